//! Tests of the pure data layer: check digits, dates, layout, id inversion, determinism, geography.

use std::collections::HashSet;

use super::*;

#[test]
fn verhoeff_known_vectors() {
    assert_eq!(verhoeff_check_digit("236"), 3);
    assert!(verhoeff_valid("2363"));
    assert!(!verhoeff_valid("2364"));
    assert_eq!(verhoeff_check_digit("12345"), 1);
    assert!(verhoeff_valid("123451"));
    assert_eq!(verhoeff_check_digit("142857"), 0);
    assert!(verhoeff_valid("1428570"));
    assert!(!verhoeff_valid(""));
    assert!(!verhoeff_valid("23a63"));
    // A single-digit error and an adjacent transposition are both caught.
    assert!(!verhoeff_valid("1248570"));
    assert!(!verhoeff_valid("4128570"));
    // Every single-digit error and every adjacent transposition is detected.
    for n in (20_000_000_000u64..20_000_400_000).step_by(997) {
        let s = format!("{n}{}", verhoeff_check_digit(&n.to_string()));
        assert!(verhoeff_valid(&s));
        let b = s.as_bytes();
        for i in 0..b.len() {
            for d in b'0'..=b'9' {
                let mut e = b.to_vec();
                e[i] = d;
                assert_eq!(verhoeff_valid(std::str::from_utf8(&e).unwrap()), d == b[i], "{s} pos {i}");
            }
            if i + 1 < b.len() && b[i] != b[i + 1] {
                let mut e = b.to_vec();
                e.swap(i, i + 1);
                assert!(!verhoeff_valid(std::str::from_utf8(&e).unwrap()), "{s} swap {i}");
            }
        }
    }
    for payload in [1u64, 9, 10, 236, 12345, 20_000_000_000, 99_999_999_999] {
        assert_eq!(verhoeff::check_digit_u64(payload), verhoeff_check_digit(&payload.to_string()));
    }
}

#[test]
fn dates_parse_format_and_reject() {
    let d = Date::parse_dmy("16-01-2021").unwrap();
    assert_eq!(d, Date::from_days(18_643));
    assert_eq!(d.to_string(), "16-01-2021");
    assert_eq!(Date::parse_dmy("29-02-2024").unwrap().add_days(1).to_string(), "01-03-2024");
    for bad in ["29-02-2021", "31-04-2021", "00-01-2021", "1-1-2021", "01/01/2021", "01-13-2021", "01-01-1999", ""] {
        assert_eq!(Date::parse_dmy(bad), None, "{bad}");
    }
    for days in (18_000..21_000).step_by(37) {
        let d = Date::from_days(days);
        let mut out = Vec::new();
        d.write_dmy(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), d.to_string());
        assert_eq!(Date::parse_dmy(&d.to_string()), Some(d));
    }
}

#[test]
fn every_mobile_has_one_to_four_and_totals_match() {
    for n in [0u64, 1, 3, 9, 10, 11, 17, 1_234, 10_000, 99_999] {
        let ds = Dataset::new(42, n);
        let count = ds.mobiles_count();
        let mut total = 0;
        let mut next = 0;
        for mobile in FIRST_MOBILE..FIRST_MOBILE + count {
            let r = ds.indices_of_mobile(mobile);
            assert!((1..=4).contains(&(r.end - r.start)), "n={n} mobile={mobile} {r:?}");
            assert_eq!(r.start, next, "runs are contiguous");
            next = r.end;
            total += r.end - r.start;
        }
        assert_eq!(total, n);
        assert!(!ds.is_registered(FIRST_MOBILE + count), "n={n}");
        for i in 0..n {
            assert!(ds.indices_of_mobile(ds.mobile_of(i)).contains(&i));
        }
    }
}

#[test]
fn blocks_use_every_permutation_shape() {
    let ds = Dataset::new(3, 10_000);
    let mut shapes = HashSet::new();
    for block in 0..1000 {
        let counts: Vec<u64> =
            (0..4).map(|j| ds.indices_of_mobile(FIRST_MOBILE + 4 * block + j).count() as u64).collect();
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3, 4]);
        shapes.insert(counts);
    }
    assert_eq!(shapes.len(), 24);
}

#[test]
fn unregistered_mobiles() {
    let ds = Dataset::new(1, 10_000);
    for m in [
        0,
        FIRST_MOBILE - 1,
        UNREGISTERED_FROM,
        UNREGISTERED_FROM + 1,
        9_999_999_999,
        FIRST_MOBILE + ds.mobiles_count(),
    ] {
        assert!(ds.beneficiaries_of_mobile(m).is_empty(), "{m}");
    }
    let big = Dataset::new(1, u64::MAX);
    assert_eq!(big.beneficiaries(), MAX_BENEFICIARIES);
    assert!(FIRST_MOBILE + big.mobiles_count() <= UNREGISTERED_FROM);
    assert!(!big.is_registered(UNREGISTERED_FROM));
}

#[test]
fn ids_are_well_formed_unique_and_invertible() {
    let n = 20_000;
    let ds = Dataset::new(9, n);
    let (mut refs, mut pids) = (HashSet::new(), HashSet::new());
    for i in 0..n {
        let b = ds.beneficiary(i);
        let r = b.reference_id_string();
        let p = b.photo_id_string();
        assert_eq!(r.len(), 14);
        assert_eq!(p.len(), 12);
        assert!(matches!(p.as_bytes()[0], b'2'..=b'9'), "{p}");
        assert!(verhoeff_valid(&p), "{p}");
        assert_eq!(ds.beneficiary_by_ref(&r), Some(b));
        assert_eq!(ds.beneficiary_by_photo_id(&p), Some(b));
        assert!(refs.insert(r) && pids.insert(p));
    }
    // Ids of records beyond N are not in the registry; broken check digits are refused.
    let bigger = Dataset::new(9, n + 10);
    assert_eq!(ds.beneficiary_by_ref(&bigger.beneficiary(n).reference_id_string()), None);
    assert_eq!(ds.beneficiary_by_photo_id(&bigger.beneficiary(n).photo_id_string()), None);
    let p = ds.photo_id_of(5);
    assert_eq!(ds.index_of_photo_id(p - p % 10 + (p % 10 + 1) % 10), None);
    assert_eq!(ds.beneficiary_by_ref("1234"), None);
    assert_eq!(ds.beneficiary_by_photo_id("abcdefghijkl"), None);
}

#[test]
fn deterministic_across_instances_and_seed_dependent() {
    let (a, b, c) = (Dataset::new(5, 5_000), Dataset::new(5, 5_000), Dataset::new(6, 5_000));
    let mut differ = 0;
    for i in 0..5_000 {
        assert_eq!(a.beneficiary(i), b.beneficiary(i));
        differ += usize::from(a.beneficiary(i).reference_id != c.beneficiary(i).reference_id);
    }
    assert!(differ > 4_900);
    let d = Date::parse_dmy("01-06-2021").unwrap();
    assert_eq!(serde_json::to_value(a.centres(7, d)).unwrap(), serde_json::to_value(b.centres(7, d)).unwrap());
}

#[test]
fn write_json_matches_serde_and_fields_are_sane() {
    let ds = Dataset::new(11, 3_000);
    let mut statuses = HashSet::new();
    let mut appointments = 0;
    for i in 0..3_000 {
        let b = ds.beneficiary(i);
        let mut out = Vec::new();
        b.write_json(&mut out);
        let fast: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(fast, serde_json::to_value(b).unwrap());
        assert_eq!(fast["mobile_number"], b.mobile.to_string());
        assert!((1940..2006).contains(&b.birth_year));
        assert!(ds.district(b.district_id).is_some());
        statuses.insert(b.vaccination_status);
        match b.vaccination_status {
            VaccinationStatus::NotVaccinated => assert!(b.vaccine.is_none() && b.dose1_date.is_none()),
            VaccinationStatus::PartiallyVaccinated => assert!(b.dose1_date.is_some() && b.dose2_date.is_none()),
            VaccinationStatus::Vaccinated => assert!(b.dose2_date > b.dose1_date),
        }
        if let Some(a) = b.appointment {
            appointments += 1;
            assert_eq!(ds.parse_session_id(&a.session_id.to_string()), Some(a.session));
            assert_ne!((a.session.center_id % 10, a.session.index), CAPACITY_ONE_SESSION);
            assert_eq!(fast["appointments"][0]["session_id"], a.session_id.to_string());
        }
    }
    assert_eq!(statuses.len(), 3);
    assert!(appointments > 50, "{appointments}");
}

#[test]
fn geography_and_sessions() {
    let ds = Dataset::new(1, 10);
    let states = ds.states();
    assert_eq!(states.len(), 36);
    assert_eq!(states[0].state_name, "Andaman and Nicobar Islands");
    assert!(states.iter().enumerate().all(|(i, s)| s.state_id == i as u32 + 1));
    let all: usize = states.iter().map(|s| ds.districts(s.state_id).unwrap().len()).sum();
    assert_eq!(all, ds.district_count() as usize);
    assert_eq!(ds.districts(1).unwrap()[0].district_id, 1);
    assert!(ds.districts(0).is_none() && ds.districts(37).is_none());

    let date = Date::parse_dmy("10-05-2021").unwrap();
    for district_id in 1..=ds.district_count() {
        let centres = ds.centres(district_id, date);
        assert_eq!(centres.len(), CENTRES_PER_DISTRICT as usize);
        let first = &centres[0].sessions[0];
        assert_eq!(first.available_capacity, 1, "capacity-1 rule, district {district_id}");
        assert_eq!(Some(first.key), ds.capacity_one_session(district_id, date));
        for c in &centres {
            assert_eq!(ds.centres_by_pin(c.info.pincode, date, 1), vec![c.clone()]);
            for s in &c.sessions {
                assert_eq!(ds.parse_session_id(&s.session_id.to_string()), Some(s.key));
            }
        }
    }
    let week = ds.centres_for_days(3, date, 7).unwrap();
    let dates: HashSet<Date> = week[0].sessions.iter().map(|s| s.date).collect();
    assert_eq!(dates.len(), 7);
    assert!(ds.centres_for_days(0, date, 7).is_none());
    assert!(ds.centres_by_pin(999_999, date, 1).is_empty());

    let sid = ds.centres(1, date)[1].sessions[0].session_id.to_string();
    let mut tampered = sid.clone().into_bytes();
    tampered[35] = if tampered[35] == b'0' { b'1' } else { b'0' };
    assert_eq!(ds.parse_session_id(std::str::from_utf8(&tampered).unwrap()), None);
    assert_eq!(Dataset::new(2, 10).parse_session_id(&sid), None, "ids are seed-specific");
}

#[test]
fn written_raw_strings_need_no_escaping() {
    let names = tables::MALE_NAMES.iter().chain(tables::FEMALE_NAMES).chain(tables::LAST_NAMES);
    for s in names {
        assert!(s.bytes().all(|b| b != b'"' && b != b'\\' && (b' '..=b'~').contains(&b)), "{s}");
    }
}
