"""Use cases: plain functions that the CLI, jobs, the API, the web app and the email all call.

Each takes the store (and, when it changes what suggestions depend on, the job queue), does
its writes in one transaction, then asks for a refresh. Who may do and see what is decided
here (`access`), so no surface can forget it.

- `access`: who is asking (a `Viewer`) and what they may see.
- `customers`: import, archive and restore, opt-outs, salespeople's roles.
- `network`: ties and do-not-introduce pairs.
- `matches`: suggestions as a salesperson may see them, feedback, contact sharing, history.
"""
