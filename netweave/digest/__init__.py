"""Email: the SMTP sender every message goes through (`mailer`): password resets and intros
from the web app, and the weekly digest."""
