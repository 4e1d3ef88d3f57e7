"""Matching: ranked, explained introductions between customers.

The parts, each in its own module: `rules` (kinds, spheres, pairs from rules.yaml),
`settings` (every weight and threshold), `embedder` (sentence-transformers and text hashes),
`vectors` (exact dot products), `kinds`, `geography`, `eligibility`, `features`, `scoring`,
`search` (local and far candidates, vector search), `ranking` (pools, variety), `book`
(the loaded book and which lists a change reaches), `reasons`, and `refresh` (the worker's
`Matcher`, against the store).

Importing this package imports none of them: web processes read published suggestions
from the store and never load numpy-heavy engine code, torch or the model.
"""
