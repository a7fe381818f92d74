//! One beneficiary record: how it is drawn from `(seed, index)` and how it is written as CoWIN JSON.
//!
//! [`Beneficiary::write_json`] (the export path) and the `serde::Serialize` impl produce the same JSON.

use serde::ser::{SerializeStruct, Serializer};

use super::json::{push_key, push_plain_str, push_str, push_u64, push_u64_str};
use super::tables::{FEMALE_NAMES, LAST_NAMES, MALE_NAMES};
use super::{Dataset, Date, HexId, SessionKey, TAG_RECORD, geo, hash, mix};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
    Others,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VaccinationStatus {
    NotVaccinated,
    PartiallyVaccinated,
    Vaccinated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vaccine {
    Covishield,
    Covaxin,
    SputnikV,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "Male",
            Gender::Female => "Female",
            Gender::Others => "Others",
        }
    }
}

impl VaccinationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VaccinationStatus::NotVaccinated => "Not Vaccinated",
            VaccinationStatus::PartiallyVaccinated => "Partially Vaccinated",
            VaccinationStatus::Vaccinated => "Vaccinated",
        }
    }
}

impl Vaccine {
    pub fn as_str(self) -> &'static str {
        match self {
            Vaccine::Covishield => "COVISHIELD",
            Vaccine::Covaxin => "COVAXIN",
            Vaccine::SputnikV => "SPUTNIK V",
        }
    }

    /// Days between dose 1 and dose 2.
    pub fn dose_gap(self) -> i32 {
        match self {
            Vaccine::Covishield => 84,
            Vaccine::Covaxin => 28,
            Vaccine::SputnikV => 21,
        }
    }
}

/// A booked second-dose appointment (some partially vaccinated beneficiaries have one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appointment {
    pub appointment_id: HexId,
    pub session: SessionKey,
    pub session_id: HexId,
    /// Index into [`super::SLOTS`].
    pub slot: u8,
    pub dose: u8,
}

/// One record. Numbers are kept as numbers; the JSON shows ids and years as strings, like CoWIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beneficiary {
    pub index: u64,
    /// 14 digits.
    pub reference_id: u64,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub birth_year: u16,
    pub gender: Gender,
    /// 10 digits: the owner's mobile.
    pub mobile: u64,
    /// 12 digits, first 2–9, Verhoeff-valid.
    pub photo_id_number: u64,
    pub comorbidity: bool,
    pub vaccination_status: VaccinationStatus,
    pub vaccine: Option<Vaccine>,
    pub dose1_date: Option<Date>,
    pub dose2_date: Option<Date>,
    pub district_id: u32,
    pub appointment: Option<Appointment>,
}

/// Dose 1 dates fall in the 700 days from 16-01-2021 (the start of India's campaign).
const DOSE1_FROM: Date = Date::from_days(18_643);

impl Dataset {
    /// Record `index` (computed for any index; the registry holds `index < N`).
    pub fn beneficiary(&self, index: u64) -> Beneficiary {
        let mobile = self.mobile_of(index);
        let h1 = hash(self.seed, TAG_RECORD, index);
        let h2 = mix(h1 ^ 0x5851_f42d_4c95_7f2d);
        let family = hash(self.seed, TAG_RECORD, mobile ^ (1 << 62));
        let gender = match h1 % 100 {
            0..=48 => Gender::Male,
            49..=98 => Gender::Female,
            _ => Gender::Others,
        };
        let firsts = match (gender, (h1 >> 7) & 1) {
            (Gender::Male, _) | (Gender::Others, 0) => MALE_NAMES,
            _ => FEMALE_NAMES,
        };
        let status = match h2 % 10 {
            0..=2 => VaccinationStatus::NotVaccinated,
            3..=4 => VaccinationStatus::PartiallyVaccinated,
            _ => VaccinationStatus::Vaccinated,
        };
        let drawn = match (h2 >> 8) % 10 {
            0..=6 => Vaccine::Covishield,
            7..=8 => Vaccine::Covaxin,
            _ => Vaccine::SputnikV,
        };
        let dose1 = DOSE1_FROM.add_days(((h2 >> 16) % 700) as i32);
        let district_id = self.district_of_mobile(mobile);
        let (vaccine, dose1_date, dose2_date) = match status {
            VaccinationStatus::NotVaccinated => (None, None, None),
            VaccinationStatus::PartiallyVaccinated => (Some(drawn), Some(dose1), None),
            VaccinationStatus::Vaccinated => (Some(drawn), Some(dose1), Some(dose1.add_days(drawn.dose_gap()))),
        };
        let appointment = match (status, (h2 >> 40) % 3) {
            (VaccinationStatus::PartiallyVaccinated, 0) => {
                let centre = ((h2 >> 44) % u64::from(geo::CENTRES_PER_DISTRICT)) as u32;
                let session = SessionKey {
                    center_id: geo::centre_id(district_id, centre),
                    date: dose1.add_days(drawn.dose_gap()),
                    // Centre 0's session 0 is the capacity-1 one; never pre-book it.
                    index: u8::from(centre == 0),
                };
                Some(Appointment {
                    appointment_id: self.appointment_id_of(index),
                    session,
                    session_id: self.session_id(session),
                    slot: ((h2 >> 50) % geo::SLOTS.len() as u64) as u8,
                    dose: 2,
                })
            }
            _ => None,
        };
        Beneficiary {
            index,
            reference_id: self.reference_id_of(index),
            first_name: firsts[((h1 >> 8) % firsts.len() as u64) as usize],
            last_name: LAST_NAMES[(family % LAST_NAMES.len() as u64) as usize],
            birth_year: 1940 + ((h1 >> 32) % 66) as u16,
            gender,
            mobile,
            photo_id_number: self.photo_id_of(index),
            comorbidity: (h1 >> 40).is_multiple_of(5),
            vaccination_status: status,
            vaccine,
            dose1_date,
            dose2_date,
            district_id,
            appointment,
        }
    }
}

impl Beneficiary {
    /// `"First Last"`.
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// The 14-digit reference id as a string.
    pub fn reference_id_string(&self) -> String {
        self.reference_id.to_string()
    }

    /// The 12-digit photo id as a string.
    pub fn photo_id_string(&self) -> String {
        self.photo_id_number.to_string()
    }

    /// Append this record as one CoWIN-shaped JSON object, with its generated appointment.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, self.appointment.as_slice());
    }

    /// Append this record as one CoWIN-shaped JSON object, with `appointments` as its live ones
    /// (the registry's bookings, which replace the generated appointment once it was touched).
    pub fn write_json_with(&self, out: &mut Vec<u8>, appointments: &[Appointment]) {
        out.reserve(512);
        out.extend_from_slice(b"{\"beneficiary_reference_id\":");
        push_u64_str(out, self.reference_id);
        out.extend_from_slice(b",\"name\":\"");
        out.extend_from_slice(self.first_name.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.last_name.as_bytes());
        out.extend_from_slice(b"\",\"birth_year\":");
        push_u64_str(out, u64::from(self.birth_year));
        out.extend_from_slice(b",\"gender\":");
        push_plain_str(out, self.gender.as_str());
        out.extend_from_slice(b",\"mobile_number\":");
        push_u64_str(out, self.mobile);
        out.extend_from_slice(b",\"photo_id_type\":\"Aadhaar Card\",\"photo_id_number\":");
        push_u64_str(out, self.photo_id_number);
        out.extend_from_slice(b",\"comorbidity_ind\":");
        push_plain_str(out, if self.comorbidity { "Y" } else { "N" });
        out.extend_from_slice(b",\"vaccination_status\":");
        push_plain_str(out, self.vaccination_status.as_str());
        out.extend_from_slice(b",\"vaccine\":");
        push_plain_str(out, self.vaccine.map_or("", Vaccine::as_str));
        for (key, date) in [("dose1_date", self.dose1_date), ("dose2_date", self.dose2_date)] {
            out.push(b',');
            push_key(out, key);
            out.push(b'"');
            if let Some(d) = date {
                d.write_dmy(out);
            }
            out.push(b'"');
        }
        out.extend_from_slice(b",\"district_id\":");
        push_u64(out, u64::from(self.district_id));
        out.extend_from_slice(b",\"appointments\":[");
        for (i, a) in appointments.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            a.write_json(out);
        }
        out.extend_from_slice(b"]}");
    }
}

impl Appointment {
    fn write_json(&self, out: &mut Vec<u8>) {
        let info = geo::centre_info(self.session.center_id);
        out.extend_from_slice(b"{\"appointment_id\":\"");
        self.appointment_id.write(out);
        out.extend_from_slice(b"\",\"center_id\":");
        push_u64(out, u64::from(self.session.center_id));
        for (key, value) in self.centre_strings(info.as_ref()) {
            out.push(b',');
            push_key(out, key);
            push_str(out, value);
        }
        out.extend_from_slice(b",\"dose\":");
        push_u64(out, u64::from(self.dose));
        out.extend_from_slice(b",\"session_id\":\"");
        self.session_id.write(out);
        out.extend_from_slice(b"\",\"date\":\"");
        self.session.date.write_dmy(out);
        out.extend_from_slice(b"\",\"slot\":");
        push_str(out, self.slot_str());
        out.push(b'}');
    }

    fn slot_str(&self) -> &'static str {
        geo::SLOTS.get(usize::from(self.slot)).copied().unwrap_or("")
    }

    fn centre_strings<'a>(&self, info: Option<&'a geo::CentreInfo>) -> [(&'static str, &'a str); 6] {
        let f = |g: fn(&'a geo::CentreInfo) -> &'a str| info.map_or("", g);
        [
            ("name", f(|i| &i.name)),
            ("state_name", f(|i| i.state_name)),
            ("district_name", f(|i| i.district_name)),
            ("block_name", f(|i| &i.block_name)),
            ("from", f(|i| i.from)),
            ("to", f(|i| i.to)),
        ]
    }
}

impl serde::Serialize for Appointment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let info = geo::centre_info(self.session.center_id);
        let mut st = s.serialize_struct("Appointment", 12)?;
        st.serialize_field("appointment_id", &self.appointment_id)?;
        st.serialize_field("center_id", &self.session.center_id)?;
        for (key, value) in self.centre_strings(info.as_ref()) {
            st.serialize_field(key, value)?;
        }
        st.serialize_field("dose", &self.dose)?;
        st.serialize_field("session_id", &self.session_id)?;
        st.serialize_field("date", &self.session.date)?;
        st.serialize_field("slot", self.slot_str())?;
        st.end()
    }
}

impl serde::Serialize for Beneficiary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let date = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
        let mut st = s.serialize_struct("Beneficiary", 14)?;
        st.serialize_field("beneficiary_reference_id", &self.reference_id_string())?;
        st.serialize_field("name", &self.name())?;
        st.serialize_field("birth_year", &self.birth_year.to_string())?;
        st.serialize_field("gender", self.gender.as_str())?;
        st.serialize_field("mobile_number", &self.mobile.to_string())?;
        st.serialize_field("photo_id_type", "Aadhaar Card")?;
        st.serialize_field("photo_id_number", &self.photo_id_string())?;
        st.serialize_field("comorbidity_ind", if self.comorbidity { "Y" } else { "N" })?;
        st.serialize_field("vaccination_status", self.vaccination_status.as_str())?;
        st.serialize_field("vaccine", self.vaccine.map_or("", Vaccine::as_str))?;
        st.serialize_field("dose1_date", &date(self.dose1_date))?;
        st.serialize_field("dose2_date", &date(self.dose2_date))?;
        st.serialize_field("district_id", &self.district_id)?;
        st.serialize_field("appointments", self.appointment.as_slice())?;
        st.end()
    }
}
