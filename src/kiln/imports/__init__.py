"""Bringing other sites' media home: ``kiln import mediagoblin`` (kiln.imports.mediagoblin), with what it
brought in remembered (``Imported``) so a second run skips it, and the old site's URLs kept working
(``LegacyPath``, answered by kiln.imports.redirects)."""
