// Light scripting for the tuning form: a slider mirrors its number field and re-requests the
// feed when released; a component toggle re-requests with that component switched off.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("tuning");
  if (!form) return;
  for (const slider of form.querySelectorAll("input.slider")) {
    const field = document.getElementById(slider.dataset.target);
    slider.addEventListener("input", () => { field.value = slider.value; });
    slider.addEventListener("change", () => { field.value = slider.value; form.submit(); });
  }
  for (const toggle of form.querySelectorAll("input.toggle")) {
    toggle.addEventListener("change", () => {
      const name = toggle.dataset.component;
      const existing = form.querySelector(`input[data-off="${name}"]`);
      if (toggle.checked && existing) existing.remove();
      if (!toggle.checked && !existing) {
        const hidden = document.createElement("input");
        Object.assign(hidden, { type: "hidden", name: "off", value: name });
        hidden.dataset.off = name;
        form.appendChild(hidden);
      }
      form.submit();
    });
  }
});
