"""The daemon: ``mig-labeler run`` as parts, each built through its constructor by the root.

``root`` (the composition root: builds, runs, builds again on a reload) · ``one_pass`` (gate,
read, compute, publish, report; no threads) · ``run_loop`` (when a pass runs) · ``live_settings``
(the one owner of what changes at run time) · ``our_node`` (our Node as freshly as we know it) and
``node_cache`` · ``outputs`` (the sinks, built once) · ``reporting`` and ``node_events`` (log
lines, counters, Events) · ``watch`` (the watchers) · ``wake`` and ``signals`` (what ends a wait)
· ``health`` and ``metrics`` · ``diff`` (a plan, written nowhere). One stop token
(``mig_labeler.stop``) is handed to every part that waits. Nothing here imports the command line.
"""
