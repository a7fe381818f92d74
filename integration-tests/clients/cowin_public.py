"""A published CoWIN client, unmodified, against `otpgate demo` (integration-tests/cowin_client.rs).

`cowin` (PyPI, 0.0.5, import `cowin_api`) calls https://cdn-api.co-vin.in/api/v2/... with requests;
the test points it at the demo only through the environment: HTTPS_PROXY (a CONNECT proxy that
leads to the demo), REQUESTS_CA_BUNDLE (the demo CA) and TMPDIR (fake_useragent's cached browser
list, which it would otherwise download). Prints what the client returned, as JSON.
"""
import datetime
import json
import sys

from cowin_api import CoWinAPI

client = CoWinAPI()


def ok(value, what):
    if not isinstance(value, dict):
        sys.exit(f"{what}: the client got an error: {value!r}")
    return value


states = ok(client.get_states(), "states")["states"]
state_id = states[0]["state_id"]
districts = ok(client.get_districts(str(state_id)), "districts")["districts"]
district_id = districts[0]["district_id"]
date = (datetime.date.today() + datetime.timedelta(days=1)).strftime("%d-%m-%Y")
by_district = ok(client.get_availability_by_district(str(district_id), date), "calendarByDistrict")
pincode = by_district["centers"][0]["pincode"]
by_pin = ok(client.get_availability_by_pincode(str(pincode), date), "calendarByPin")
adults = ok(client.get_availability_by_district(str(district_id), date, min_age_limt=18), "age filter")
print(json.dumps({
    "states": len(states),
    "districts": len(districts),
    "district_id": district_id,
    "by_district": by_district,
    "by_pin": by_pin,
    "adults": adults,
}))
