// The web app's sign-in: an argon2 hash of each salesperson's password, never the password, as
// (:Salesperson {password_hash, password_changed_at}). Properties need no schema here: this
// migration only keeps the two backends' histories in step with
// graph/migrations/sqlite/009_sign_in.sql.
