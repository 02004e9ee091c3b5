"""Jinja2 page templates; installed as app.templates so the wheel carries them."""
