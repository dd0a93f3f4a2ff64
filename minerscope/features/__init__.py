"""Stage-1 features: flows -> windowed time-series statistics (numpy, all flows at once).

``schema`` lists the candidate features once (with a version and hash), ``series``
computes them, ``windows`` cuts flows into samples and is the public entry point
(:func:`minerscope.features.windows.extract_features`), ``selection`` keeps the
significant ones for training. Submodules are imported explicitly so importing this
package stays cheap.
"""
