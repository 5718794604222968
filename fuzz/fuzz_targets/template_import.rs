//! A template file as the import endpoints read it: the body as UTF-8,
//! parsed strictly (duplicate keys refused), the whole file checked
//! (`coform_model::file::check_file`), and the content read into the typed
//! model (`coform_model::parse`).
//!
//! Beyond "no panic":
//! - strict parsing agrees with plain parsing whenever it accepts, and
//!   what it accepts, written out and parsed again, is the same value;
//! - an accepted file has content with both roots that the model accepts,
//!   and its listing is trimmed and within bounds;
//! - a content the model accepts reads into a form that, written out,
//!   is accepted again and reads back to the same form;
//! - checking and parsing are deterministic.

#![no_main]

use coform_model::file::check_file;
use coform_model::{json_eq, parse, parse_strict, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_form(content: &Value) {
    let Ok(form) = parse(content) else {
        assert!(validate(content).is_err());
        return;
    };
    let written = serde_json::to_value(&form).expect("a form serialises");
    assert_eq!(validate(&written), Ok(()), "{written}");
    assert_eq!(parse(&written).as_ref(), Ok(&form), "{written}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = parse_strict(text) else {
        return;
    };
    let plain: Value = serde_json::from_str(text).expect("strict accepts only JSON");
    assert!(json_eq(&plain, &file));
    let again = parse_strict(&file.to_string()).expect("written out, read again");
    assert!(json_eq(&again, &file));

    match check_file(&file) {
        Ok((listing, content)) => {
            assert!(!listing.name.is_empty() && listing.name == listing.name.trim());
            assert!(listing.name.chars().count() <= coform_model::MAX_META_NAME_CHARS);
            assert!(listing.tags.len() <= coform_model::MAX_TAGS);
            assert_eq!(validate(&content), Ok(()));
            let roots: Vec<&str> = content
                .as_object()
                .expect("content is an object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(roots, ["meta", "components"]);
            check_form(&content);
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            assert_eq!(check_file(&file).unwrap_err(), errors);
        }
    }
    // The content alone, as the REST API's content endpoints take it.
    check_form(file.get("content").unwrap_or(&file));
});
