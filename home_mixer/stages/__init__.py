"""The newer ranking stages (the reference authors' August 2026 release) as pure functions
over numpy columns: no query, no candidate objects, no I/O. The pipeline components that run
them (one file each, under filters/, scorers/, selectors/, side_effects/) only gather the
columns and apply the result. docs/home_mixer.md, "Newer ranking stages", describes each.

- oon_reply_repost.py  drop replies/reposts by accounts the viewer does not follow, and
                       replies whose ancestors are unknown
- served.py            the recently served ids a request filters against, and the keep mask
- mutual_follow.py     the extra reply weight for original posts of mutual follows
- cold_start.py        lift the best small-author post to the 16th-highest score
- dpp.py               greedy MAP inference of a determinantal point process (diversity
                       selection over content vectors)
- not_selected.py      the selected / not-selected split at the result size
"""
