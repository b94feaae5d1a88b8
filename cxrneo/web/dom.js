// Small DOM helpers shared by the viewer's modules (no state).

export const $ = (id) => document.getElementById(id);

// an element with its class and text (both optional)
export function el(tag, className = "", text = "") {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
}

// a finding's name as people read it ("Pleural_Thickening" -> "Pleural Thickening")
export const pretty = (name) => String(name).replaceAll("_", " ");

// a ticked-or-not choice about one image on a card: <label class="pick …"><input type=checkbox> words</label>
export function imageTick(className, imageId, aria, words, onChange) {
  const pick = el("label", className);
  const box = el("input");
  box.type = "checkbox";
  box.dataset.id = imageId;
  box.setAttribute("aria-label", aria);
  box.addEventListener("change", onChange);
  pick.append(box, document.createTextNode(words));
  return pick;
}
