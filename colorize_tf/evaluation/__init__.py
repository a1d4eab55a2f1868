"""Measuring a colorizer: the photos, the scoring graphs, group statistics, reports and
figures; video flicker; the study's report and the realism study's store. Below it:
chroma, data, modeling, serving."""
