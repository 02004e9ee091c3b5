"""CSS, scripts and icons served at /static; installed as app.static so the wheel carries them."""
