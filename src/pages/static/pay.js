// Card payment with Stripe.js and its Payment Element. The PaymentIntent is made by the server
// for the amount it computes; this page only collects the card (in Stripe's frame) and confirms
// the intent. Stripe then sends the browser to the return page, which tells the truth from the
// server's side; a declined card is reported here and can be tried again.
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  var button = document.getElementById("pay-button");
  var message = document.getElementById("payment-message");
  var mount = document.getElementById("payment-element");
  if (!form || !button || !message || !mount) {
    return;
  }

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  if (typeof window.Stripe !== "function") {
    mount.textContent = "";
    say("The secure card form could not be loaded. Please check your connection and reload the page.");
    return;
  }

  var stripe = window.Stripe(form.dataset.key);
  var elements = stripe.elements({ clientSecret: form.dataset.secret });
  var payment = elements.create("payment");
  mount.textContent = "";
  payment.mount(mount);
  var busy = false;
  payment.on("ready", function () { button.disabled = false; });
  payment.on("change", function (event) {
    if (event && event.error) {
      say(event.error.message);
    } else {
      say("");
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) {
      return;
    }
    busy = true;
    button.disabled = true;
    say("");
    stripe.confirmPayment({
      elements: elements,
      confirmParams: { return_url: form.dataset.return }
    }).then(function (result) {
      // Only reached when the payment did not go ahead: otherwise Stripe has moved the browser
      // on to the return page.
      busy = false;
      button.disabled = false;
      if (result && result.error) {
        say(result.error.message || "The payment did not go through. Please try again.");
      }
    }, function () {
      busy = false;
      button.disabled = false;
      say("The payment could not be sent. Please check your connection and try again.");
    });
  });
})();
