//! Vaccination certificates and appointment slips as small hand-written PDF 1.4 documents (one
//! page, Helvetica text).

use super::bookings::Booked;
use super::data::{Beneficiary, Date, SLOTS, centre_info};

/// The certificate of `b`: a valid PDF 1.4 with a correct cross-reference table.
pub fn certificate_pdf(b: &Beneficiary) -> Vec<u8> {
    let date = |d: Option<Date>| d.map_or_else(|| "-".to_owned(), |d| d.to_string());
    let lines = [
        format!("Beneficiary Name: {}", b.name()),
        format!("Beneficiary Reference ID: {}", b.reference_id),
        format!("Year of Birth: {}", b.birth_year),
        format!("Gender: {}", b.gender.as_str()),
        format!("Vaccination Status: {}", b.vaccination_status.as_str()),
        format!("Vaccine Name: {}", b.vaccine.map_or("-", |v| v.as_str())),
        format!("Date of Dose 1: {}", date(b.dose1_date)),
        format!("Date of Dose 2: {}", date(b.dose2_date)),
    ];
    text_pdf("Certificate for COVID-19 Vaccination", &lines)
}

/// The slip of appointment `a` for `people` (its beneficiaries' records, in its order).
pub fn appointment_slip_pdf(a: &Booked, people: &[Beneficiary]) -> Vec<u8> {
    let centre = centre_info(a.session.center_id);
    let mut lines = vec![
        format!("Appointment ID: {}", a.id),
        format!("Dose: {}", a.dose),
        format!("Date: {}", a.session.date),
        format!("Time Slot: {}", SLOTS.get(usize::from(a.slot)).copied().unwrap_or("-")),
        format!("Vaccination Center: {}", centre.as_ref().map_or("-", |c| c.name.as_str())),
        format!("Address: {}", centre.as_ref().map_or("-", |c| c.address.as_str())),
    ];
    for b in people {
        lines.push(format!("Beneficiary: {} (Reference ID {})", b.name(), b.reference_id));
    }
    text_pdf("Appointment Slip - COVID-19 Vaccination", &lines)
}

/// A one-page PDF of a title and lines of text, with a correct cross-reference table.
fn text_pdf(title: &str, lines: &[String]) -> Vec<u8> {
    let mut content = format!("BT /F1 18 Tf 72 770 Td ({}) Tj ET\n", escape(title));
    content.push_str("BT /F1 12 Tf 16 TL 72 730 Td\n");
    for line in lines {
        content.push('(');
        content.push_str(&escape(line));
        content.push_str(") Tj T*\n");
    }
    content.push_str("ET\n");

    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
    ];
    let mut out = Vec::with_capacity(2048);
    out.extend_from_slice(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// Escape a PDF literal string; non-ASCII characters become `?` (the font is WinAnsi).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            ' '..='~' => out.push(ch),
            _ => out.push('?'),
        }
    }
    out
}
