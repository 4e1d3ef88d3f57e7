// The view version: a token renewed by every write that may change what a suggestion sheet
// shows, so each process reads a sheet again only when it has changed (graph/store.py), kept
// as (:MatchState {id: 'current'}).view. Mirrors graph/migrations/sqlite/013_view_version.sql.
MERGE (st:MatchState {id: 'current'}) SET st.view = randomUUID();
