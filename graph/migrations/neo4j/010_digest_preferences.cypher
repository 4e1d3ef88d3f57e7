// Each salesperson's weekly-digest preferences, as (:Salesperson {digest_weekly, digest_weekday,
// digest_size}). Properties need no schema here: this migration only keeps the two backends'
// histories in step with graph/migrations/sqlite/010_digest_preferences.sql.
