/* The till's "Scan with camera": progressive enhancement. Only where the browser has both
   BarcodeDetector (reading QR codes) and getUserMedia does the button appear; a code read from
   the camera fills in the code field and submits the same form a person would type into.
   Without this script (or the APIs) the typed form is all there is, and it works alone. */
(function () {
  "use strict";
  var button = document.getElementById("till-scan");
  var form = document.getElementById("till-form");
  var input = document.getElementById("f-code");
  var camera = document.getElementById("till-camera");
  var video = document.getElementById("till-video");
  var stopButton = document.getElementById("till-scan-stop");
  var status = document.getElementById("till-scan-status");
  if (!button || !form || !input || !camera || !video || !stopButton || !status) return;
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
      typeof navigator.mediaDevices.getUserMedia !== "function") return;

  var CODE = /[0-9A-Za-z]{4}[- ]?[0-9A-Za-z]{4}[- ]?[0-9A-Za-z]/;
  var stream = null;
  var timer = 0;
  var detector = null;

  function say(name) { status.textContent = status.getAttribute("data-" + name) || ""; }

  function stop() {
    if (timer) { window.clearTimeout(timer); timer = 0; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.srcObject = null;
    camera.hidden = true;
    button.hidden = false;
  }

  function found(raw) {
    var match = CODE.exec(raw);
    input.value = match ? match[0] : raw.trim();
    stop();
    say("found");
    if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.submit();
  }

  function look() {
    timer = 0;
    if (!stream) return;
    detector.detect(video).then(function (codes) {
      if (!stream) return;
      for (var i = 0; i < codes.length; i++) {
        if (codes[i].rawValue) { found(codes[i].rawValue); return; }
      }
      timer = window.setTimeout(look, 250);
    }, function () {
      if (stream) timer = window.setTimeout(look, 500);
    });
  }

  function start() {
    say("starting");
    button.hidden = true;
    camera.hidden = false;
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      })
      .then(function () { say("looking"); look(); })
      .catch(function () { stop(); say("denied"); input.focus(); });
  }

  function offer() {
    try {
      detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch (e) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", start);
    stopButton.addEventListener("click", function () { stop(); input.focus(); });
    window.addEventListener("pagehide", stop);
  }

  var supported = window.BarcodeDetector.getSupportedFormats;
  if (typeof supported === "function") {
    supported.call(window.BarcodeDetector).then(function (formats) {
      if (formats.indexOf("qr_code") !== -1) offer();
    }, function () {});
  } else {
    offer();
  }
})();
