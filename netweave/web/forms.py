"""What the web app's forms share."""

from __future__ import annotations

from flask_wtf import FlaskForm

from netweave.services.access import Invalid


def show_problems(form: FlaskForm, error: Invalid) -> None:
    """A service's refusal of fields, shown on those fields of the form (the form's own errors
    for a problem with no field of its name)."""
    for field, message in error.problems:
        target = getattr(form, field, None)
        if target is None:
            form.form_errors.append(message)
        else:
            target.errors = [*target.errors, message]
