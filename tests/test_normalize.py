"""Normalization: times, record ids, field shapes, connector bodies, backend agreement."""

from __future__ import annotations

import datetime as dt
import itertools

import evtx
import orjson
import pytest

from evtxdoc import pipeline
from evtxdoc.parse import fallback_available, python_evtx_records, rs_records
from evtxdoc.parse import normalize as normalize_module
from evtxdoc.parse.normalize import ROW_FIELDS, _split_text, normalize, row
from evtxdoc.parse.payload import decode_fields, encode_payload
from evtxdoc.parse.times import event_time, format_time_ns, parse_time_ns
from evtxdoc.timeline import fields_of, select

from .conftest import real, real_files

LEGACY_BODY = (
    '{"Metric":{"Dimensions":{"RequestId":"5f8c7e3a-1111-4a4a-9b9b-000000000001",'
    '"DeviceId":"0d4a8c1e-2222-4b4b-8c8c-000000000002","DomainName":"contoso.com",'
    '"ErrorCode":"5","RetryCount":"1","ErrorDescription":"Failed to get the ODJ Blob.",'
    '"InstanceId":"7","DiagnosticCode":"0x00000800","DiagnosticText":"The account does not '
    'have sufficient privileges. NetProvisionComputerAccount failed machineName=AP-7Q2LKD1X."},'
    '"Name":"RequestOfflineDomainJoinBlob_Failure","Value":0}}'
)
UPDATED_BODY = (
    "ComputerObjectCreated: the request was processed\r\n"
    "ElapsedMilliseconds: 1834\r\n"
    "DeviceId: e078603c-fe1a-488a-a760-415622ff9f45\r\n"
    "DeviceName: AP-9X3KQ2LM\r\n"
    "DiagnosticCode: 0\r\n"
    "DiagnosticText: Success"
)


def raw(event_data=None, user_data=None, channel="System", **system):
    created = {"#attributes": {"SystemTime": "2025-02-18T10:00:00.123456Z"}}
    event = {
        "System": {
            "Channel": channel,
            "Computer": "HOST1",
            "EventRecordID": 7,
            "TimeCreated": created,
            **system,
        }
    }
    if event_data is not None:
        event["EventData"] = event_data
    if user_data is not None:
        event["UserData"] = user_data
    return (7, "2025-02-18T10:00:00.1234567Z UTC", event)


def test_legacy_connector_json_body_becomes_fields():
    event = normalize(
        raw({"Data": {"#text": LEGACY_BODY}}, channel="ODJ Connector Service"), "odj.evtx"
    )
    assert event.fields["Data0"] == LEGACY_BODY
    assert event.fields["ErrorCode"] == "5"
    assert event.fields["DiagnosticCode"] == "0x00000800"  # as written, not re-rendered
    assert event.fields["DomainName"] == "contoso.com"
    assert event.fields["MetricName"] == "RequestOfflineDomainJoinBlob_Failure"
    assert event.fields["MachineName"] == "AP-7Q2LKD1X"


def test_updated_connector_key_value_body_becomes_fields():
    event = normalize(
        raw(
            {"Data": {"#text": UPDATED_BODY}},
            channel="Microsoft-Intune-ODJConnectorService/Operational",
        ),
        "x",
    )
    assert event.fields["EventType"] == "ComputerObjectCreated"
    assert event.fields["DeviceName"] == "AP-9X3KQ2LM"
    assert event.fields["DiagnosticCode"] == "0"
    assert event.fields["ElapsedMilliseconds"] == "1834"
    assert event.fields["DeviceId"] == "e078603c-fe1a-488a-a760-415622ff9f45"


def test_key_value_lines_outside_connector_channels_stay_text():
    event = normalize(raw({"Data": {"#text": UPDATED_BODY}}, channel="Application"), "x")
    assert "DeviceName" not in event.fields


def test_unnamed_data_become_numbered_fields_and_named_keep_names():
    event = normalize(raw({"Data": {"#text": ["a", "", "c"]}, "Binary": "E207"}), "x")
    assert [event.fields[f"Data{i}"] for i in range(3)] == ["a", "", "c"]
    assert event.fields["Binary"] == "E207"
    named = normalize(raw({"DomainName": "contoso.com", "ComputerName": "AP-1"}), "x")
    assert named.fields == {"DomainName": "contoso.com", "ComputerName": "AP-1"}


def test_user_data_flattened_with_dotted_paths():
    user = {
        "WinVerifyTrustStart": {
            "EventAuxInfo": {"#attributes": {"ProcessName": "a.exe"}},
            "#attributes": {"xmlns": "urn:x"},
            "Result": 5,
        }
    }
    event = normalize(raw(user_data=user), "x")
    assert event.fields == {
        "UserData": "WinVerifyTrustStart",
        "WinVerifyTrustStart.EventAuxInfo.ProcessName": "a.exe",
        "WinVerifyTrustStart.Result": 5,
    }


def test_guid_values_take_the_windows_form():
    activity = {"#attributes": {"ActivityID": "a1b2c3d4-0000-0000-0000-00000000abcd"}}
    event = normalize(
        raw({"DeviceId": "e078603c-fe1a-488a-a760-415622ff9f45"}, Correlation=activity), "x"
    )
    assert event.fields["DeviceId"] == "{E078603C-FE1A-488A-A760-415622FF9F45}"
    assert event.activity_id == "{A1B2C3D4-0000-0000-0000-00000000ABCD}"


def test_qualifiers_are_separate_from_the_event_id():
    event = normalize(raw({}, EventID={"#attributes": {"Qualifiers": 16384}, "#text": 7036}), "x")
    assert (event.event_id, event.qualifiers) == (7036, 16384)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2016-07-08T18:12:51.681640Z", "2016-07-08T18:12:51.6816400Z"),
        ("2016-07-08T18:12:51.6816408Z UTC", "2016-07-08T18:12:51.6816408Z"),
        ("2016-07-08 18:12:51.681641+00:00", "2016-07-08T18:12:51.6816410Z"),
        ("2021-11-19T16:52:33.833733500Z", "2021-11-19T16:52:33.8337335Z"),
        ("2021-11-19T18:52:33.5+02:00", "2021-11-19T16:52:33.5000000Z"),
    ],
)
def test_time_formats_of_every_backend(text, expected):
    assert format_time_ns(parse_time_ns(text)) == expected


def test_header_time_supplies_the_100ns_digit_only_when_it_agrees():
    assert event_time("2016-07-08T18:12:51.681640Z", "2016-07-08T18:12:51.6816408Z UTC") == (
        parse_time_ns("2016-07-08T18:12:51.6816408Z"),
        True,
    )
    # rs drops trailing zeros of the header time: .676846 means .6768460
    assert event_time("2016-07-08T18:12:54.676846Z", "2016-07-08T18:12:54.676846Z UTC")[1]
    # an exported file: the header holds the export time, so only µs are known here
    ns, exact = event_time("2016-09-19T16:50:06.123456Z", "2016-09-20T09:00:00.1111111Z UTC")
    assert (ns, exact) == (parse_time_ns("2016-09-19T16:50:06.123456Z"), False)


def test_times_at_100ns_in_a_live_log():
    analysis = pipeline.analyze([real("system.evtx")])
    first = select(analysis.timeline, event_ids=[6009]).iloc[0]
    assert format_time_ns(first["ts"].value) == "2017-07-12T17:16:28.2141616Z"


def test_exported_file_record_ids_come_from_the_xml_and_times_from_the_filetime():
    path = real("smb-password-guessing-security.evtx")  # every header time is the export time
    header_ids = [
        r["event_record_id"]
        for r in itertools.islice(evtx.PyEvtxParser(str(path)).records_json(), 5)
    ]
    analysis = pipeline.analyze([path])
    frame = analysis.timeline
    assert sorted(frame["record_id"])[:5] != header_ids  # the XML ids, not the header's 1..n
    fractions = {format_time_ns(v)[20:27] for v in frame["ts"].array.asi8[:500]}
    assert any(not f.endswith("0") for f in fractions)  # 100 ns digits recovered


def test_fields_decode_from_the_timeline():
    analysis = pipeline.analyze([real("new-user-security.evtx")])
    fields = fields_of(analysis.timeline)
    assert fields[0]["MemberSid"].startswith("S-1-5-21-")


@pytest.mark.skipif(not fallback_available(), reason="python-evtx not installed")
@pytest.mark.parametrize(
    "name", ["new-user-security.evtx", "Security_with_size_t.evtx", "system.evtx"]
)
def test_python_evtx_and_rs_normalize_alike(name):
    path = str(real(name))
    rs = {}
    for record in itertools.islice(rs_records(path, lambda *_: None), 60):
        event = normalize(record, "f")
        rs[event.record_id] = event
    other = {}
    for record in itertools.islice(python_evtx_records(path, set(), lambda *_: None), 60):
        event = normalize(record, "f")
        other[event.record_id] = event
    common = set(rs) & set(other)
    assert len(common) >= 4
    for record_id in common:
        a, b = rs[record_id], other[record_id]
        assert (a.host, a.channel, a.provider, a.event_id, a.level) == (
            b.host,
            b.channel,
            b.provider,
            b.event_id,
            b.level,
        )
        assert abs(a.ts - b.ts) < 10_000  # µs renderings; python-evtx's float is off by µs
        assert a.activity_id == b.activity_id
        for key, value in a.fields.items():
            assert comparable(value) == comparable(b.fields.get(key)), key


def comparable(value):
    """Known rendering differences of python-evtx: \r\n folded by XML parsing, HexInt32
    printed in decimal, empty strings as None."""
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.startswith("0x"):
        return int(value, 16)
    if isinstance(value, str) and (ns := parse_time_ns(value)) is not None and value[4] == "-":
        return ns // 10_000  # FILETIMEs: µs renderings that differ by a rounding
    if isinstance(value, str):
        value = value.replace("\r\n", "\n")
        return int(value) if value.isdigit() else value
    return value


def test_decode_fields_takes_stored_payload_bytes():
    payload = encode_payload({"EventData": {"A": 1, "Data": {"#text": ["x", "y"]}}})
    assert isinstance(payload, bytes)
    assert decode_fields(payload) == {"A": 1, "Data0": "x", "Data1": "y"}


def test_any_value_a_backend_gives_can_be_stored():
    payload = encode_payload(
        {
            "EventData": {
                "Big": 2**70,
                "Low": -(2**70),
                "List": [2**65],
                "Bytes": b"\x01",
                5: "numeric key",
            }
        }
    )
    assert decode_fields(payload) == {
        "Big": str(2**70),
        "Low": str(-(2**70)),
        "List": [str(2**65)],
        "Bytes": "b'\\x01'",
        "5": "numeric key",
    }
    assert decode_fields(b"{not json") == {}


def test_odd_system_values_of_a_damaged_record_do_not_stop_the_file():
    event = {
        "System": {
            "TimeCreated": "garbage",
            "Correlation": "x",
            "Security": 5,
            "EventID": "12",
            "Provider": "p",
            "Computer": 7,
            "Level": "4",
            "EventRecordID": "99",
        },
        "EventData": None,
    }
    values = dict(zip(ROW_FIELDS, row((3, "2025-02-18T10:00:00.1234567Z UTC", event)), strict=True))
    assert (values["event_id"], values["level"], values["record_id"]) == (12, 4, 99)
    assert (values["host"], values["provider"], values["activity_id"]) == ("7", "", None)
    assert values["ts"] == parse_time_ns("2025-02-18T10:00:00.1234567Z")  # the header's time
    created = {"#attributes": {"SystemTime": 1234}}  # a number where the time belongs
    event = {
        "System": {
            "TimeCreated": created,
            "EventID": 1,
            "Level": 4,
            "Task": 0,
            "Opcode": 0,
            "EventRecordID": 5,
            "Computer": "H",
            "Channel": "C",
            "Provider": {"#attributes": {"Name": "P"}},
            "Correlation": None,
            "Security": None,
        }
    }
    assert row((5, "2025-02-18T10:00:00.1234567Z UTC", event))[6] == 5


def test_trailing_zeros_dropped_from_the_header_time_still_agree():
    assert event_time("2016-07-08T22:16:31.245000Z", "2016-07-08T22:16:31.245Z UTC") == (
        parse_time_ns("2016-07-08T22:16:31.245Z"),
        True,
    )
    assert event_time("2016-07-08T22:16:31.000000Z", "2016-07-08T22:16:31Z UTC")[1]
    assert not event_time("2016-07-08T22:16:31.245100Z", "2016-07-08T22:16:31.245Z UTC")[1]


def _whole_event_row(record):
    """The row by the careful path: the whole text parsed, System popped, the rest encoded."""
    header_id, header_time, text = record
    return row((header_id, header_time, orjson.loads(text)["Event"]))


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_cutting_rs_text_at_system_gives_the_row_of_the_whole_event(path):
    """The fast path (System parsed alone, the payload kept as rs's bytes) and the careful path
    agree on every column and on every decoded field, record by record, on every real file.
    The records read by a template learned from an earlier one are compared too."""
    normalize_module._TEMPLATES.clear()
    fast_rows = templated = 0
    for record in rs_records(str(path), lambda *_: None):
        assert isinstance(record[2], str)
        fast = row(record)
        careful = _whole_event_row(record)
        assert fast[:13] + fast[14:] == careful[:13] + careful[14:]
        assert orjson.loads(fast[13]) == orjson.loads(careful[13])
        assert decode_fields(fast[13], fast[8]) == decode_fields(careful[13], careful[8])
        system = _split_text(record[2])[1]
        fast_rows += system is not None
        templated += type(system) is tuple
    assert fast_rows or path.stat().st_size < 100_000  # the big real files take the cut
    assert templated or path.stat().st_size < 100_000  # … and most of their records a template


@pytest.mark.parametrize(
    "text",
    [
        # RenderingInfo (a forwarded event) holds the message: the whole event is read
        '{"Event":{"System":{"EventID":1,"Level":4,"Task":0,"Opcode":0,"EventRecordID":2,'
        '"Channel":"C","Computer":"H","Provider":{"#attributes":{"Name":"P"}},"TimeCreated":'
        '{"#attributes":{"SystemTime":"2025-02-18T10:00:00.123456Z"}},"Correlation":null,'
        '"Security":null},"EventData":{"A":"x"},"RenderingInfo":{"Message":"hello"}}}',
        # UserData before System: the cut would close UserData, which is not System
        '{"Event":{"UserData":{"U":{"V":"1"}},"System":{"EventID":1,"Level":4,"Task":0,"Opcode":0,'
        '"EventRecordID":2,"Channel":"C","Computer":"H","Provider":{"#attributes":{"Name":"P"}},'
        '"TimeCreated":{"#attributes":{"SystemTime":"2025-02-18T10:00:00.123456Z"}},'
        '"Correlation":null,"Security":null},"EventData":{"A":"x"}}}',
        # a value that spells the cut inside a string (its quote is escaped, so it is no cut)
        '{"Event":{"System":{"EventID":1,"Level":4,"Task":0,"Opcode":0,"EventRecordID":2,'
        '"Channel":"C","Computer":"H\\"},\\"EventData\\":","Provider":{"#attributes":{"Name":"P"}},'
        '"TimeCreated":{"#attributes":{"SystemTime":"2025-02-18T10:00:00.123456Z"}},'
        '"Correlation":null,"Security":null},"EventData":{"A":"x"}}}',
        # no payload at all
        '{"Event":{"System":{"EventID":1,"Level":4,"Task":0,"Opcode":0,"EventRecordID":2,'
        '"Channel":"C","Computer":"H","Provider":{"#attributes":{"Name":"P"}},"TimeCreated":'
        '{"#attributes":{"SystemTime":"2025-02-18T10:00:00.123456Z"}},"Correlation":null,'
        '"Security":null}}}',
    ],
)
def test_rs_text_of_any_layout_gives_the_row_of_the_whole_event(text):
    record = (2, "2025-02-18T10:00:00.1234567Z UTC", text)
    fast, careful = row(record), _whole_event_row(record)
    assert fast[:13] + fast[14:] == careful[:13] + careful[14:]
    assert decode_fields(fast[13], fast[8]) == decode_fields(careful[13], careful[8])
    event = orjson.loads(text)["Event"]
    assert fast[12] == (event.get("RenderingInfo") or {}).get("Message")
    assert fast[7] == event["System"]["Computer"]


def test_text_without_an_event_object_keeps_the_record_header():
    """rs yields `{"Event":null}` for some damaged records: never fewer records than rs."""
    from evtxdoc.parse.normalize import DAMAGED_MESSAGE

    for text in ("[1, 2]", '{"Event": 5}', '{"Event":null}', "{not json"):
        found = row((7, "2016-07-08T18:12:51.6816408Z UTC", text))
        assert found is not None
        assert (found[6], found[12]) == (7, DAMAGED_MESSAGE)
        assert found[0] == 1468001571681640800  # the header's write time
    assert row((7, None, 5)) is None  # type: ignore[arg-type]  # not a record at all


def test_seconds_are_counted_like_datetime_and_bad_times_refused():
    for text in (
        "1677-09-22T00:00:00",
        "1970-01-01T00:00:00",
        "2016-02-29T23:59:59",
        "2025-12-31T12:34:56",
        "2262-04-11T23:47:16",
    ):
        stamp = dt.datetime.fromisoformat(text)
        assert (
            parse_time_ns(text)
            == (stamp - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000
        )
    for text in (
        "2016-13-08T18:12:51",
        "2015-02-29T00:00:00",
        "2016-07-08T24:00:00",
        "2016-07-08T18:60:00",
        "2016-07-08T18:00:61",
        "1601-01-01T00:00:00",
    ):  # a FILETIME of 0: before datetime64[ns] begins
        assert parse_time_ns(text) is None


def test_a_nested_key_named_like_the_payload_does_not_move_the_cut():
    text = (
        '{"Event":{"System":{"EventID":1,"Level":4,"Task":0,"Opcode":0,"EventRecordID":2,'
        '"Channel":"C","Computer":"H","Provider":{"#attributes":{"Name":"P"}},"TimeCreated":'
        '{"#attributes":{"SystemTime":"2025-02-18T10:00:00.123456Z"}},"Correlation":null,'
        '"Security":null},"EventData":{"X":{"Y":1},"EventData":"inner"}}}'
    )
    record = (2, "2025-02-18T10:00:00.1234567Z UTC", text)
    assert decode_fields(row(record)[13]) == {"X.Y": 1, "EventData": "inner"}
    assert row(record) == _whole_event_row(record)


def _system_text(middle: str, end: str = ',"Channel":"C","Computer":"H","Security":null') -> str:
    """rs's text of one record, its System's middle members (TimeCreated … Execution) and what
    follows them given."""
    return (
        '{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"P"}},'
        '"EventID":7,"Version":0,"Level":4,"Task":0,"Opcode":0,"Keywords":"0x80",'
        f'"TimeCreated":{middle}{end}}},"EventData":{{"A":"x"}}}}}}'
    )


def _middle(time="2025-02-18T10:00:00.123456Z", record_id="2", correlation="null") -> str:
    return (
        f'{{"#attributes":{{"SystemTime":"{time}"}}}},"EventRecordID":{record_id},'
        f'"Correlation":{correlation},"Execution":{{"#attributes":{{"ProcessID":4,"ThreadID":8}}}}'
    )


@pytest.mark.parametrize(
    "later",
    [
        _middle(time="2025-02-19T11:12:13.654321Z", record_id="99"),
        _middle(
            correlation='{"#attributes":{"ActivityID":"{0D4A8C1E-2222-4B4B-8C8C-00000000000A}"}}'
        ),
        _middle(correlation='{"#attributes":{"ActivityID":"x","RelatedActivityID":"y"}}'),
        _middle(record_id="012"),  # no JSON: the template must not read it
        _middle(time="2025-02-18T10:00:00.123456Z\u0000"),
        _middle(record_id="2") + ',"Level":2',  # a member the middle may not hold
    ],
)
def test_a_learned_template_reads_a_record_as_its_whole_parse_would(later):
    """After one record teaches its System's template, a record of the same template with any
    other middle gives the row the whole-event parse gives (or, for text JSON refuses, the row
    without the template)."""
    normalize_module._TEMPLATES.clear()
    header = "2025-02-18T10:00:00.1234567Z UTC"
    first = (2, header, _system_text(_middle()))
    assert row(first) == _whole_event_row(first)
    assert type(_split_text(first[2])[1]) is tuple  # learned
    record = (3, header, _system_text(later))
    found = row(record)
    try:
        careful = _whole_event_row(record)
    except orjson.JSONDecodeError:
        normalize_module._TEMPLATES.clear()
        assert found == row(record)  # the same without the template
        assert type(_split_text(record[2])[1]) is not tuple
        return
    assert found[:13] + found[14:] == careful[:13] + careful[14:]


@pytest.mark.parametrize(
    "end",
    [
        ',"Channel":"C","Computer":"H","Security":null,"EventRecordID":5',
        ',"Channel":"C","Computer":"H","Security":null,"Correlation":null',
        ',"Channel":"C","Computer":"H","TimeCreated":{"#attributes":{"SystemTime":"2020-01-01T00:00:00.000000Z"}}',
    ],
)
def test_no_template_is_learned_where_a_later_member_overrides_the_middle(end):
    """JSON keeps the last of repeated names: a System that repeats a middle member after the
    middle is never read by template (a second record of that text would get the first's)."""
    normalize_module._TEMPLATES.clear()
    record = (2, "2025-02-18T10:00:00.1234567Z UTC", _system_text(_middle(), end))
    found, careful = row(record), _whole_event_row(record)
    assert found[:13] + found[14:] == careful[:13] + careful[14:]
    assert not normalize_module._TEMPLATES
