"""Reads an emissions.csv written by Verdant the way CodeCarbon's FileOutput does (pandas),
checks the columns and values, and writes it back with df.to_csv as CodeCarbon does.

Usage: pandas_round_trip.py EMISSIONS_CSV COMMA_SEPARATED_COLUMNS
The values checked are those of the sample phase in sinks_test.cpp."""
import math
import sys

import pandas as pd

path, columns = sys.argv[1], sys.argv[2].split(",")
df = pd.read_csv(path)
assert list(df.columns) == columns, f"columns differ: {list(df.columns)}"
assert len(columns) == 38, len(columns)
assert len(df) == 1, len(df)
row = df.iloc[0]
expected = {
    "duration": 10.0,
    "cpu_power": 36.0,
    "ram_power": 3.6,
    "energy_consumed": 396.0 / 3.6e6,
    "water_consumed": 396.0 / 3.6e6 * 1.8,
    "cpu_utilization_percent": 87.5,
    "ram_utilization_percent": 25.0,
    "ram_used_gb": 6.0,
    "pue": 1.2,
    "wue": 1.8,
    "cpu_count": 2,
}
for name, value in expected.items():
    assert math.isclose(float(row[name]), value, rel_tol=1e-9), (name, row[name], value)
assert row["cpu_model"] == 'Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz, "quoted"', row["cpu_model"]
assert row["country_iso_code"] == "FRA"
assert row["tracking_mode"] == "process"
# Not measured or not applicable: empty in the file, NaN in pandas.
for name in ("gpu_utilization_percent", "codecarbon_version", "longitude", "latitude"):
    assert pd.isna(row[name]), (name, row[name])
df.to_csv(path, index=False)
print("pandas round trip ok")
