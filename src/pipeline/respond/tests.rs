#[test]
fn registry_codes_cannot_carry_numbers() {
    for ok in ["APPOIN0040", "BENERR0001", "GENERR0500", "NF"] {
        assert!(super::registry_code(ok), "{ok}");
    }
    for bad in ["", "9000000001", "APPOIN9000000001", "appoin0040", "A-B", "ABCDEFGHIJKLMNOPQ", "X12345"] {
        assert!(!super::registry_code(bad), "{bad}");
    }
}

#[test]
fn records_are_found_whatever_the_case_of_their_keys() {
    let doc = br#"{"Beneficiaries":[{"Beneficiary_Reference_Id":"10000000000001","MOBILE_NUMBER":"9000000001"},{"beneficiary_reference_id":10000000000002}]}"#;
    let r = super::released(doc, "beneficiaries", "mobile_number", "beneficiary_reference_id");
    assert_eq!(r.count, 2);
    assert_eq!(r.refs, ["10000000000001", "10000000000002"]);
    assert_eq!(r.owners, ["9000000001"]);
}
