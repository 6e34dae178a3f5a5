// Submits the SAML HTTP-POST binding form at once. Without JavaScript the
// page shows a "Continue" button that does the same.
const form = document.querySelector("form[data-autosubmit]");
if (form) {
  form.submit();
}
