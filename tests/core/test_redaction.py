"""Patient-data redaction for KB notes (tracker_bridge/core/redact.py, docs/redaction.md).

The corpus test holds the detector to its published figures; the unit tests pin each kind's
rules (what is redacted, what is deliberately left); the property tests check what must hold
for any text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.core.redaction_corpus import score
from tracker_bridge.core import kb
from tracker_bridge.core import redact as redact_module
from tracker_bridge.core.kb import closing_line, kb_note
from tracker_bridge.core.redact import (
    REDACTED,
    find_identifiers,
    redact,
    redact_with_findings,
    residual_kinds,
)
from tracker_bridge.core.saferegex import compile_safe
from tracker_bridge.core.ticket import HistoryEvent, Ticket

# -- the corpus ---------------------------------------------------------------------------------


def test_corpus_recall_and_false_positive_rate() -> None:
    sc = score()
    assert sum(sc.total.values()) >= 150 and sc.technical_lines >= 100
    misses = "\n".join(f"  {m.kind}: {m.identifier!r} -> {m.redacted!r}" for m in sc.misses)
    assert sc.recall >= 0.98, (
        f"recall {sum(sc.found.values())}/{sum(sc.total.values())} = {sc.recall:.1%}; "
        f"identifiers left in:\n{misses}"
    )
    changed = "\n".join(f"  {c.text!r} -> {c.redacted!r} ({c.kinds})" for c in sc.false_positives)
    assert sc.fp_rate <= 0.02, (
        f"{len(sc.false_positives)} of {sc.technical_lines - sc.accepted_lines} technical lines "
        f"changed ({sc.fp_rate:.1%}):\n{changed}"
    )


def test_by_design_redactions_are_the_titled_names_only() -> None:
    sc = score()
    accepted = [c for c in sc.changed if c.accepted]
    assert [c.kinds for c in accepted] == [["name"]] * sc.accepted_lines


# -- helpers ------------------------------------------------------------------------------------


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_identifiers(text)]


def gone(text: str, *secrets: str) -> None:
    out = redact(text)
    for s in secrets:
        assert s not in out, f"{s!r} left in {out!r}"


def kept(text: str) -> None:
    assert redact(text) == text, kinds(text)


# -- NHS and CHI numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["943 476 5919", "943-476-5919", "943.476.5919", "943\u00a0476\u00a05919",
               "943\u202f476\u202f5919", "9434765919"],
)  # fmt: skip
def test_nhs_number_in_any_layout(number: str) -> None:
    assert kinds(f"Summary record for {number} does not load.") == [("nhs_number", number)]


def test_nhs_number_with_a_wrong_check_digit_is_left_unless_labelled() -> None:
    kept("Build 9434765918 deployed.")
    assert redact("NHS number 943 476 5918 (typo?)") == f"NHS number {REDACTED} (typo?)"


def test_ten_digit_numbers_in_technical_context_are_left() -> None:
    for text in (
        "epoch 1709374800 is an hour off",
        "created=4566193454",
        "order_id: 4566193454",
        "Processed 4566193454 bytes",
        "DELETE FROM audit_log WHERE created < 1704067200;",
        "sha 3f4566193454ab",
        "UID 1.2.840.113619.2.55.3.4566193454.868",
    ):
        kept(text)


def test_unix_times_are_left_unless_something_says_otherwise() -> None:
    kept("[1709374800] worker exited")  # valid mod 11, but 1xxxxxxxxx reads as a Unix time
    gone("CHI 1605962120 not found", "1605962120")
    gone("Could you look at 1605962120 (CHI)?", "1605962120")


def test_context_words_are_read_on_the_numbers_own_line() -> None:
    # "patient" on the line before does not make an epoch a person's number...
    kept("Patient list fixed.\nepoch 1709374800 logged by the job")
    # ...but a label on the line before a number that starts its line does
    assert kinds("NHS Number:\n1605962120") == [("nhs_number", "1605962120")]


def test_chi_number_six_four_layout_and_context() -> None:
    assert kinds("Trak shows 081280 4694 for a different patient") == [
        ("chi_number", "081280 4694")
    ]
    assert kinds("CHI: 0808394339; DOB wrong")[0] == ("chi_number", "0808394339")


# -- BSN, SSN -----------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1716.07.909", "171 607 909", "171.607.909", "171607909"])
def test_bsn_layouts(number: str) -> None:
    assert kinds(f"Dossier {number} opent niet.") == [("bsn", number)]


def test_bsn_failing_the_eleven_proof_is_left() -> None:
    kept("Dossier 171607908 opent niet.")


def test_ssn() -> None:
    assert kinds("SSN 536-22-1847 on the statement") == [("ssn", "536-22-1847")]
    assert kinds("member 536 22 1847") == [("ssn", "536 22 1847")]
    kept("part 000-12-3456 and 666-12-3456 are not SSNs")


# -- labelled hospital numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("hosp no K123456 not crossing", "K123456"), ("MRN: A1234567 -", "A1234567"),
     ("mrn#8812345 duplicate", "8812345"), ("PATIENT NO 445566 - RESULTS", "445566"),
     ("Hospital Number: RTH0043321.", "RTH0043321"), ("Medical Record No. 55-21-337 x", "55-21-337"),
     ("patient id 7712093 cannot", "7712093"), ("The MRN is 9034412, the", "9034412"),
     ("MRN 330 4412 with a space", "330 4412"), ("patiëntnummer 12345678 heeft", "12345678")],
)  # fmt: skip
def test_labelled_identifiers_any_case(text: str, value: str) -> None:
    assert ("record_number", value) in kinds(text)
    assert value not in redact(text)


def test_a_second_number_shaped_like_a_labelled_one_goes_too() -> None:
    gone("MRN 4402231 was merged into 4402239 by mistake.", "4402231", "4402239")
    # another shape is not a sibling
    assert "V55612" in redact("MRN 9034412, visit V55612")


def test_labels_without_a_number_are_left() -> None:
    kept("The MRN field is blank; patient id lookups fail for ward 12.")


# -- dates of birth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["DOB 03/03/1971", "born 3rd March 1971", "born on March 3, 1971", "DOB 12-Mar-1984",
     "date of birth: 1984-03-12", "D.O.B. 14.07.1958", "dob: 7/4/62", "geb. 3 maart 1971",
     "geboortedatum 12-05-1967", "Birth date 30-06-2019", "DOB: 19710303", "(DOB 1 Jan 1990)",
     "03/03/1971 (DOB)"],
)  # fmt: skip
def test_dates_of_birth(text: str) -> None:
    assert [k for k, _ in kinds(text)] == ["date_of_birth"]


def test_bare_dates() -> None:
    kept("The job ran at 02:00 on 15/03/2026 and on 2026-03-16.")
    kept("Go-live is planned for March 30, 2026.")
    kept("DOB defaults to 01/01/1900 when empty.")  # the usual "unknown", not a person's
    assert kinds("Patient Jane Smith 12/03/1956 shows") == [
        ("name", "Jane Smith"),
        ("date", "12/03/1956"),
    ]
    kept("Release 2019-05-01 went out of support.")
    kept("not a date: 31/02/1971, nor 1.2.1971.4")


# -- postcodes and addresses --------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "W1A 0AX", "EC1A 1BB", "SW1A2AA", "ox16 3jt",
     "BT7 1NN", "D02 X285"],
)  # fmt: skip
def test_postcodes(code: str) -> None:
    assert kinds(f"Letters for {code} are returned") == [("postcode", code)]


@pytest.mark.parametrize(
    "text",
    ["MD5 2BB is not a postcode area", "Ox16 3Jt mixed case", "S3 403 Forbidden",
     "Memory 2048 MB Total", "H264 4AB"],
)  # fmt: skip
def test_postcode_shapes_that_are_not_postcodes(text: str) -> None:
    kept(text)


def test_dutch_postcode_needs_a_place_name_after_it() -> None:
    assert ("postcode", "1012 AB") in kinds("Adres: 1012 AB Amsterdam")
    kept("1024 MB cache, 1080 HD screen")


def test_us_zip_after_a_state() -> None:
    assert ("postcode", "62704") in kinds("Springfield, IL 62704")


@pytest.mark.parametrize(
    "address",
    ["12 Baker Street", "221B Baker Street", "4 Station Road", "27 Church Close",
     "742 Evergreen Terrace", "10 Downing St", "14 Queen's Road", "2 HIGH STREET",
     "Keizersgracht 123", "Dorpsstraat 12a", "Van Goghlaan 5", "Laan van Meerdervoort 101"],
)  # fmt: skip
def test_street_addresses(address: str) -> None:
    assert ("address", address) in kinds(f"Letter sent to {address}, by mistake.")


def test_street_shapes_in_instructions_are_left() -> None:
    kept("Step 2 Close the dialog and reopen; step 3 Save Changes.")
    kept("Room 12 Main Building has no network.")


# -- phones and e-mail --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["(020) 7946 0123", "020 7946 0018", "07911 123456", "+44 7911 123456", "02079460123",
     "+44 (0)161 496 0752", "06-12345678", "+31 6 2345 6789", "020-5551234", "06 12 34 56 78",
     "(415) 555-2671", "1-212-555-0187", "617.555.0143", "+1 (646) 555-0112", "+49 30 12345678",
     "07700 900461"],
)  # fmt: skip
def test_phone_numbers(phone: str) -> None:
    assert ("phone", phone) in kinds(f"Call {phone} today")


def test_past_the_phone_budget_numbers_are_redacted_on_shape_and_the_note_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redact_module, "_PHONE_BUDGET", 2)
    phones = ["020 7946 0123", "0113 496 0831", "07911 123456", "06-12345678", "0161 496 0752"]
    text = "Numbers: " + ", ".join(phones)
    assert [k for k, _ in kinds(text)] == ["phone"] * 2 + ["phone_unchecked"] * 3
    gone(text, *phones)
    line = closing_line(find_identifiers(text), [])
    assert "phone-shaped number (too many in one text to check each)" in line


def test_number_shapes_that_are_not_phones() -> None:
    kept("ts=1709374800123 at 10.20.30.41:5432, build 4.12.3.1045, 2024-03-15 10:22:33")
    kept("Order 4829301746 shipped")  # ten digits with no phone context: not a US number
    kept("Job ran 01-02-2026 10:22 and 03.04.2026 09:15:00")  # Dutch/UK dates with a time
    kept("build 0102.2026.10, ticket 0161 496 0752")  # a technical word before the number
    assert ("phone", "6175550143") in kinds("Patient phone 6175550143")


def test_emails_but_not_shared_mailboxes() -> None:
    assert kinds("mail jane.doe@gmail.com or J.Müller@web.de") == [
        ("email", "jane.doe@gmail.com"),
        ("email", "J.Müller@web.de"),
    ]
    kept("Alerts go to servicedesk@vendor.co.uk; git clone git@github.com:vendor/x.git")
    kept("npm i react@18.2.0")


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [("The patient, Maria van der Berg, was booked", "Maria van der Berg"),
     ("Label printed as PATIENT JOHN SMITH instead", "JOHN SMITH"),
     ("Mrs Zoë Brontë's repeat prescription", "Zoë Brontë"),
     ("Dr. María José García-López cannot sign", "María José García-López"),
     ("patient name: jan de vries", "jan de vries"),
     ("Mevr. J. de Wit-van Dijk staat dubbel", "J. de Wit-van Dijk"),
     ("dhr. P. van 't Hof heeft", "P. van 't Hof"),
     ("PATIENT: MCDONALD, ANGUS - bed 12", "MCDONALD, ANGUS"),
     ("Mr O'Neill-Jones was sent", "O'Neill-Jones"),
     ("Ms Ó Súilleabháin's GP", "Ó Súilleabháin"),
     ("Mrs de la Cruz asked", "de la Cruz"),
     ("mrs jane doe rang again", "jane doe"),
     ("Referral for Mr Ng was rejected", "Ng"),
     ("Surname: SMITH, Forename: John", "SMITH"),
     ("patient's name is Tomás Ó Briain and he", "Tomás Ó Briain"),
     ("Patient Łukasz Żółkiewski not found", "Łukasz Żółkiewski")],
)  # fmt: skip
def test_names_after_titles_and_patient(text: str, name: str) -> None:
    assert ("name", name) in kinds(text)


@pytest.mark.parametrize(
    "text",
    ["Patient list takes 40 s to load", "PATIENT SAFETY INCIDENT raised",
     "Patient Record Viewer 3.2 crashes", "The Patient Portal sends two reminders",
     "Patients called Smith are listed twice", "MR BRAIN protocol is missing",
     "DR site failover at 22:00", "MS SQL Server 2019", "200 ms Timeout Exception",
     "Consultant list shows Dr and Mrs as separate columns", "update patient set version=?",
     "at com.vendor.emr.PatientService.load(PatientService.java:412)",
     "Bel mevrouw terug op maandag"],
)  # fmt: skip
def test_trigger_words_used_the_technical_way(text: str) -> None:
    kept(text)


def test_a_detected_name_is_redacted_where_else_it_occurs() -> None:
    assert redact("Ms Li asked why her name is shown as LI, MS.") == (
        f"Ms {REDACTED} asked why her name is shown as {REDACTED}, MS."
    )


def test_hl7_pid_fields() -> None:
    seg = "PID|1||7814538408^^^NHS^NH||SMITH^JOHN^^^MR||19710303|M|||12 Baker Street^^LONDON"
    out = redact(seg)
    for secret in ("7814538408", "SMITH", "JOHN", "19710303", "Baker"):
        assert secret not in out
    assert out.startswith("PID|1||") and "|M|||" in out


# -- the API, extra patterns, the closing line --------------------------------------------------


def test_findings_carry_kind_and_span() -> None:
    text = "Mrs Jane Doe, NHS 943 476 5919"
    f = find_identifiers(text)
    assert [(x.kind, x.label, text[x.start : x.end]) for x in f] == [
        ("name", "name", "Jane Doe"),
        ("nhs_number", "NHS number", "943 476 5919"),
    ]
    assert redact_with_findings(text) == (f"Mrs {REDACTED}, NHS {REDACTED}", f)


def test_policy_patterns_re2_or_re() -> None:
    text = "PPSN 1234567TA, living at D02 X285"
    for rx in (compile_safe(r"\b\d{7}[A-W][A-IW]?\b"), re.compile(r"\b\d{7}[A-W][A-IW]?\b")):
        out = redact(text, [rx])
        assert "1234567TA" not in out and "D02 X285" not in out
    # a pattern that matches nothing, or only the empty string, changes nothing
    assert redact("plain text", [compile_safe(r"q*")]) == "plain text"


def test_every_pattern_run_on_customer_text_is_re2() -> None:
    for module in (redact_module, kb):
        for name, value in vars(module).items():
            assert not isinstance(value, re.Pattern), f"{module.__name__}.{name} is a re pattern"
            if name.startswith("_") and name.isupper() and hasattr(value, "finditer"):
                assert isinstance(value, re2._Regexp), name


def test_residual_check() -> None:
    assert residual_kinds(f"Mrs {REDACTED}, NHS {REDACTED}") == []
    assert residual_kinds("typo 943 476 5918 and 9434765918") == ["long number"]
    assert residual_kinds("mixed Ox16 3JT") == ["postcode-shaped text"]
    assert residual_kinds("mail me at x@y.org") == ["e-mail-shaped text"]
    assert residual_kinds("born in 1971") == ["digits after a birth word"]
    assert (
        residual_kinds("upgrade 4.12.3 on 2026-03-15 10:22:33, alerts to support@vendor.com") == []
    )


def test_closing_line_never_repeats_the_data() -> None:
    line = closing_line([], ["postcode-shaped text"])
    assert line == (
        "Patient-identifiable data was removed where detected; review this note before "
        "publishing: it may still hold some (postcode-shaped text)."
    )


def _resolved_ticket(subject: str, description: str, comment: str) -> Ticket:
    at = datetime(2026, 3, 2, 11, tzinfo=UTC)
    return Ticket(
        tracker="t",
        key="1",
        created=datetime(2026, 3, 2, 9, tzinfo=UTC),
        status="Resolved",
        reporter="customer",
        subject=subject,
        description=description,
        history=(HistoryEvent(at=at, kind="comment", by="agent", public=True, text=comment),),
    )


def _note(ticket: Ticket) -> str:
    return kb_note(ticket, class_="standard", plan="gold", resolved_at_text="Mon 2 Mar 12:00",
                   sla_lines=["SLA resolution: met, 3h of 8h"])  # fmt: skip


def test_kb_note_closing_line_when_nothing_is_left() -> None:
    note = _note(
        _resolved_ticket(
            "Report fails for Mrs Jane Doe",
            "Steps to reproduce: open NHS number 943 476 5919, DOB 01/02/1960",
            "Workaround: clear the cache. Call 020 7946 0018.",
        )
    )
    for secret in ("Jane Doe", "943 476 5919", "01/02/1960", "020 7946 0018"):
        assert secret not in note
    assert note.splitlines()[-1] == (
        "Patient-identifiable data was removed where detected (name, NHS number, date of birth, "
        "phone number); a second check found nothing identifier-like left in this note."
    )


def test_kb_note_asks_for_review_when_something_identifier_like_survives() -> None:
    note = _note(
        _resolved_ticket(
            "Letters for Ox16 3JT go astray",  # mixed case: not redacted, but postcode-shaped
            "Steps to reproduce: print a letter for 9434765918 (a typo'd NHS number)",
            "Fixed the template.",
        )
    )
    last = note.splitlines()[-1]
    assert last == (
        "Patient-identifiable data was removed where detected; review this note before "
        "publishing: it may still hold some (long number, postcode-shaped text)."
    )
    assert "3JT" not in last and "5918" not in last and "9434765918" in note
    # the bridge's own lines (resolution time, SLA figures) are not what the check looks at
    assert "Resolved: Mon 2 Mar 12:00" in note


# -- properties ---------------------------------------------------------------------------------


def _with_check_digit(body: str, weights: range, modulus_ok) -> str | None:
    for d in "0123456789":
        if modulus_ok(body + d):
            return body + d
    return None


def _nhs_ok(n: str) -> bool:
    return sum(int(c) * w for c, w in zip(n, range(10, 0, -1), strict=True)) % 11 == 0


def _bsn_ok(n: str) -> bool:
    return (
        sum(int(c) * w for c, w in zip(n[:8], range(9, 1, -1), strict=True)) - int(n[8])
    ) % 11 == 0


nhs_numbers = (
    st.text("0123456789", min_size=9, max_size=9)
    .map(lambda b: _with_check_digit(b, range(10, 1, -1), _nhs_ok))
    .filter(lambda n: n is not None)
)
bsn_numbers = (
    st.text("0123456789", min_size=8, max_size=8)
    .filter(lambda b: b[0] != "0")
    .map(lambda b: _with_check_digit(b, range(9, 1, -1), _bsn_ok))
    .filter(lambda n: n is not None)
)
#: surrounding text, cut so that it does not run into the number (a digit or a joiner right
#: next to it would make it part of a longer number, which is left alone on purpose)
surroundings = st.text(max_size=60).map(lambda t: t.rstrip("0123456789.-()\u2010\u2011\u2013"))


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(nhs_numbers, st.sampled_from([" ", "-", ".", "\u00a0"]), surroundings, surroundings)
def test_valid_nhs_numbers_are_always_removed(
    number: str, sep: str, before: str, after: str
) -> None:
    formatted = sep.join((number[:3], number[3:6], number[6:]))
    text = f"{before} {formatted} {after[::-1]}"
    assert formatted not in redact(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(bsn_numbers, st.sampled_from(["{}.{}.{}", "{} {} {}", "{}{}{}"]), surroundings, surroundings)
def test_valid_bsns_are_always_removed(number: str, layout: str, before: str, after: str) -> None:
    if layout == "{}.{}.{}":
        formatted = layout.format(number[:4], number[4:6], number[6:])
    else:
        formatted = layout.format(number[:3], number[3:6], number[6:])
    if layout == "{}{}{}":
        before = "BSN"  # a bare nine-digit number needs no technical word before it
    text = f"{before} {formatted} {after[::-1]}"
    assert formatted not in redact(text)


def test_lone_surrogates_from_json_do_not_break_re2() -> None:
    text = "Mrs Jane Doe \ud800 NHS 943 476 5919"  # json.loads('"\\ud800"') gives one
    assert redact(text) == f"Mrs {REDACTED} \ufffd NHS {REDACTED}"
    assert [f.kind for f in find_identifiers(text)] == ["name", "nhs_number"]
    note = _note(_resolved_ticket("x \udc00", "Steps to reproduce: \ud800 open it", "done \udfff"))
    assert "\ufffd open it" in note


#: any text, lone surrogates included (JSON can carry them; st.text() leaves them out)
any_text = st.lists(
    st.text(max_size=60)
    | st.text(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()), max_size=2
    ),
    max_size=6,
).map("".join)


@settings(max_examples=300)
@given(any_text)
def test_never_raises_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    residual_kinds(once)


_pieces = st.sampled_from(
    ["Mr ", "Mrs ", "patient ", "Patient: ", "John ", "SMITH ", "van ", "der ", "Berg ", "DOB ",
     "03/03/1971 ", "943 476 5919 ", "9434765919 ", "MRN ", "K123456 ", "07911 123456 ",
     "+44 ", "(020) ", "7946 ", "0123 ", "LS1 ", "4AP ", "12 ", "Baker ", "Street ", "x@y.com ",
     ", ", ". ", "\n", "1", "0", "-", ".", "\u00a0", "é", "'s "]
)  # fmt: skip


@settings(max_examples=400)
@given(st.lists(_pieces, max_size=40).map("".join))
def test_idempotent_on_identifier_soup(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=100)
@given(st.text(max_size=200))
def test_findings_are_well_formed(text: str) -> None:
    for f in find_identifiers(text):
        assert 0 <= f.start < f.end <= len(text)
        assert f.kind in redact_module.KIND_LABELS
