"""Judging the scoring against outcomes: evaluate, learn, compare (issue 28).

Sales feedback (accepted, rejected, opportunity, won, lost) is the outcome.
``observe`` replays past events with a rules file (``scoring.replay.Replay``,
the same oracle as ``simulate``) and notes, for each lead, the moment it
reached sales, its scores and each rule's share then, and its feedback;
``stats`` holds the pure statistics (ROC and PR AUC, DeLong's intervals,
Wilson's, calibration); ``evaluation`` turns observations into the report
``evaluate`` prints; ``model`` fits the logistic regression ``learn`` proposes
points from (the only module that needs the ``leadstream[learn]`` extra);
``proposal`` writes those points into a copy of the rules file; ``compare``
says what a change of rules changes; ``drift`` names the score bands the live
projection counts outcomes in. Nothing here is imported by the worker.
"""
