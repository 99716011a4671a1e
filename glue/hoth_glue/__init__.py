"""HOTH data plane transforms: pure DataFrame -> DataFrame functions.

Nothing here imports awsglue, so the same code runs on Glue 5.0 and on a
local Spark session (tests, the local stack).
"""
