"""The newer ranking stages (the reference authors' August 2026 release) as pure functions
over numpy columns: no query, no candidate objects, no I/O. The pipeline components that run
them (one file each, under filters/ and scorers/) only gather the
columns and apply the result. (Not-selected posts reaching side effects is the framework's
part: `PipelineResult.not_selected`.) docs/home_mixer.md, "Newer ranking stages", describes each.

- oon_reply_repost.py  drop replies/reposts by accounts the viewer does not follow, and
                       replies whose ancestors are unknown
- served.py            when the served filter runs, and the recently served ids it uses
- mutual_follow.py     the extra reply weight for original posts of mutual follows
- cold_start.py        lift the best small-author post to the 16th-highest score
- dpp.py               greedy MAP inference of a determinantal point process (diversity
                       selection over content vectors)
"""
