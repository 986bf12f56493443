// Scanning check-in codes with the device's camera, where the browser can read QR codes
// (BarcodeDetector) and has a camera (getUserMedia). The code read fills the code form, which is
// sent as if typed; the server answers as it does without this script. Where either is missing,
// the "Scan with camera" button stays hidden and the form works as it is.
(function () {
  "use strict";
  var scanner = document.getElementById("scanner");
  var form = document.getElementById("code-form");
  var field = document.getElementById("code");
  var start = document.getElementById("scan-start");
  var stop = document.getElementById("scan-stop");
  var video = document.getElementById("scan-video");
  var status = document.getElementById("scan-status");
  if (!scanner || !form || !field || !start || !stop || !video || !status) {
    return;
  }
  var outcome = document.getElementById("door-outcome");
  if (outcome) {
    outcome.focus();
  }
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
      typeof navigator.mediaDevices.getUserMedia !== "function") {
    return;
  }

  var stream = null;
  var detector = null;
  var timer = null;

  function say(text) {
    status.textContent = text;
  }

  function halt() {
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.srcObject = null;
    video.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  }

  function look() {
    timer = null;
    if (!stream) {
      return;
    }
    detector.detect(video).then(function (codes) {
      var found = codes.find(function (c) { return c.rawValue; });
      if (found) {
        field.value = found.rawValue.trim();
        say("Code read; checking in…");
        halt();
        form.submit();
        return;
      }
      timer = window.setTimeout(look, 200);
    }, function () {
      timer = window.setTimeout(look, 400);
    });
  }

  start.addEventListener("click", function () {
    say("Starting the camera…");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        start.hidden = true;
        stop.hidden = false;
        return video.play();
      })
      .then(function () {
        say("Point the camera at the QR code on the ticket.");
        look();
      })
      .catch(function () {
        halt();
        say("The camera could not be used. Type the code, or find the person by name.");
      });
  });

  stop.addEventListener("click", function () {
    halt();
    say("Camera stopped.");
  });

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf("qr_code") === -1) {
      return;
    }
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    scanner.hidden = false;
  }, function () { /* no QR reading: the button stays hidden */ });
})();
