//! Made-up Nordic people: names with å ä ö ø æ, e-mail addresses and Swedish personal identity
//! numbers (personnummer, `YYYYMMDD-NNNN` with a valid Luhn check digit).

use rand::{Rng, RngExt};

const FIRST: &[&str] = &[
    "Åsa",
    "Björn",
    "Märta",
    "Sören",
    "Øystein",
    "Kjersti",
    "Jörgen",
    "Linnéa",
    "Håkan",
    "Ingrid",
    "Mohammed",
    "Fatima",
    "Ali",
    "Sara",
    "Erik",
    "Anna",
    "Lars",
    "Maja",
    "Noah",
    "Elin",
    "Jonas",
    "Siri",
    "Tove",
    "Ærenlund",
    "Göran",
    "Aino",
    "Mikkel",
    "Signe",
    "Omar",
    "Leila",
    "Oskar",
    "Ebba",
    "Viktor",
    "Freja",
    "Tuomas",
    "Agnieszka",
];
const LAST: &[&str] = &[
    "Lindqvist",
    "Åström",
    "Nørgaard",
    "Bækgaard",
    "Öberg",
    "Sjöberg",
    "Hansen",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Søndergaard",
    "Ødegård",
    "Ahmed",
    "Hussein",
    "Virtanen",
    "Kowalski",
    "Ekström",
    "Dahl",
    "Løvås",
    "Fältskog",
    "Berg",
    "Strand",
    "Holm",
    "Wikström",
];

#[derive(Debug, Clone)]
pub struct Person {
    pub full_name: String,
    pub email: String,
    pub personnummer: String,
}

pub fn person(rng: &mut impl Rng, serial: u64, birth_year: i32) -> Person {
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    // Some exports write "Last, First": a quoted comma inside a CSV field.
    let full_name = if serial % 7 == 0 { format!("{last}, {first}") } else { format!("{first} {last}") };
    let email = format!("{}.{}{}@example.se", fold(first), fold(last), serial % 1000);
    let month = rng.random_range(1..=12u32);
    let day = rng.random_range(1..=28u32);
    let digits = format!("{:02}{:02}{:02}{:03}", birth_year % 100, month, day, serial % 1000);
    let check = luhn(&digits);
    let personnummer = format!("{birth_year:04}{month:02}{day:02}-{:03}{check}", serial % 1000);
    Person { full_name, email, personnummer }
}

fn fold(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            'å' | 'ä' | 'Å' | 'Ä' => "a".chars().collect::<Vec<_>>(),
            'ö' | 'ø' | 'Ö' | 'Ø' => vec!['o'],
            'æ' | 'Æ' => vec!['a', 'e'],
            'é' => vec!['e'],
            c => c.to_lowercase().collect(),
        })
        .collect()
}

/// Luhn check digit over the 9 digits YYMMDDNNN.
fn luhn(digits: &str) -> u32 {
    let sum: u32 = digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            let x = if i % 2 == 0 { d * 2 } else { d };
            if x > 9 { x - 9 } else { x }
        })
        .sum();
    (10 - sum % 10) % 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_matches_a_known_personnummer() {
        // 811218-9876 is the Swedish Tax Agency's documentation example.
        assert_eq!(luhn("811218987"), 6);
    }

    #[test]
    fn emails_are_ascii() {
        assert_eq!(fold("Ødegård"), "odegard");
        assert_eq!(fold("Bækgaard"), "baekgaard");
    }
}
