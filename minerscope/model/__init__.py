"""Stage-1 models: XGBoost mining-vs-benign and coin boosters, their files, training, scoring.

``artifact`` (load/save, never pickle), ``classify`` (:func:`~minerscope.model.classify.score`),
``train`` and ``data`` (labelled captures -> model folder), ``evaluate`` (metrics, the
threshold rule, the classifier comparison). Submodules are imported explicitly so
importing this package stays cheap (xgboost loads only when a model does).
"""
