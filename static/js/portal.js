// The portal's own script. Pages work without it; it only adds conveniences.
// No inline scripts anywhere: the Content-Security-Policy allows scripts from this origin only.
document.addEventListener("DOMContentLoaded", () => {
  // Confirm destructive actions marked with data-confirm.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
