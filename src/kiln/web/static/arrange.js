// Drag and drop for a collection's "Items and their order" form, and Move up / Move down buttons for
// the keyboard. Either only renumbers the position fields, which are the form without JavaScript:
// nothing is saved until the person presses "Save order and notes".
(function () {
  "use strict";
  var form = document.getElementById("arrange");
  if (!form || !window.gettext) return;
  var list = form.querySelector(".arrange-list");
  var status = document.getElementById("arrange-status");
  var dragged = null;

  function renumber() {
    Array.prototype.forEach.call(list.children, function (li, index) {
      var input = li.querySelector('input[name^="pos_"]');
      if (input) input.value = String(index + 1);
    });
    if (status) status.textContent = form.getAttribute("data-moved") || "";
  }

  function move(li, step) {
    var target = step < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (!target) return;
    list.insertBefore(li, step < 0 ? target : target.nextElementSibling);
    renumber();
  }

  Array.prototype.forEach.call(list.children, function (li) {
    li.draggable = true;
    var title = (li.querySelector(".arrange-title") || li).textContent;
    var buttons = document.createElement("span");
    buttons.className = "move-buttons";
    [[-1, "Move up: %(title)s", "↑"], [1, "Move down: %(title)s", "↓"]].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "move";
      button.textContent = spec[2];
      button.setAttribute("aria-label", gettext(spec[1], { title: title }));
      button.addEventListener("click", function () { move(li, spec[0]); button.focus(); });
      buttons.appendChild(button);
    });
    li.insertBefore(buttons, li.firstChild);
    li.addEventListener("dragstart", function (event) {
      dragged = li;
      li.classList.add("dragging");
      if (event.dataTransfer) { event.dataTransfer.effectAllowed = "move"; event.dataTransfer.setData("text/plain", ""); }
    });
    li.addEventListener("dragend", function () { li.classList.remove("dragging"); dragged = null; });
    li.addEventListener("dragover", function (event) {
      if (!dragged || dragged === li) return;
      event.preventDefault();
      var box = li.getBoundingClientRect();
      var after = event.clientY > box.top + box.height / 2;
      list.insertBefore(dragged, after ? li.nextElementSibling : li);
    });
    li.addEventListener("drop", function (event) { event.preventDefault(); renumber(); });
  });
})();
