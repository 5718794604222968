//! Field checks: e-mail addresses, display names, descriptions (shared
//! with the workspace and template routes) and the password policy.

use crate::auth::password;
use crate::error::{FieldError, FieldErrors};

/// Lower-cases and checks an e-mail address.
pub fn normalize_email(email: &str) -> Result<String, FieldError> {
    let e = email.trim().to_lowercase();
    let bad = |m: &str| FieldError {
        field: "email".into(),
        message: m.into(),
    };
    // Characters, as the OpenAPI document's `maxLength` counts them.
    if e.is_empty() || email.trim().chars().count() > 254 {
        return Err(bad("must be an e-mail address of at most 254 characters"));
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(bad("must be an e-mail address like name@example.com"));
    };
    let ok_chars = |s: &str| {
        !s.is_empty()
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c))
    };
    if !ok_chars(local)
        || !ok_chars(domain)
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad("must be an e-mail address like name@example.com"));
    }
    Ok(e)
}

/// Checks a display name: 1 to `max` characters as sent (white space
/// around it included, as the OpenAPI document's `maxLength` counts), not
/// only white space, no control character. Stored trimmed.
pub fn check_name(field: &str, name: &str, max: usize) -> Result<String, FieldError> {
    let n = name.trim();
    if n.is_empty() || name.chars().count() > max || n.chars().any(char::is_control) {
        return Err(FieldError {
            field: field.into(),
            message: format!("must be 1 to {max} characters without control characters"),
        });
    }
    Ok(n.to_owned())
}

/// Checks a free-text description (at most 2000 characters).
pub fn check_description(field: &str, description: &str) -> Result<(), FieldError> {
    if description.chars().count() > 2000 {
        return Err(FieldError {
            field: field.into(),
            message: "must be at most 2000 characters".into(),
        });
    }
    Ok(())
}

/// The `name` and `description` of an update to a listing (a workspace
/// or a template): each one given is checked and, if valid, replaces the
/// current value; an invalid one is recorded in `fields`.
pub fn update_listing(
    fields: &mut FieldErrors,
    (name, description): (Option<&str>, Option<&str>),
    current: (&mut String, &mut String),
) {
    if let Some(n) = fields.given(name, |n| check_name("name", n, 200)) {
        *current.0 = n;
    }
    let description = fields.given(description, |d| {
        check_description("description", d).map(|()| d.trim().to_owned())
    });
    if let Some(d) = description {
        *current.1 = d;
    }
}

pub(super) fn check_password(field: &str, password: &str, email: &str) -> Result<(), FieldError> {
    let problems = password::policy_violations(password, email);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(FieldError {
            field: field.into(),
            message: format!("password {}", problems.join("; ")),
        })
    }
}

/// Checks a free-form JSON object (workspace settings, a profile): an
/// object of at most 16 KiB.
pub fn check_object(field: &str, value: &serde_json::Value) -> Result<(), FieldError> {
    if !value.is_object() || value.to_string().len() > 16 * 1024 {
        return Err(FieldError::new(
            field,
            "must be a JSON object of at most 16 KiB",
        ));
    }
    Ok(())
}

/// Checks a colour like `#1a2b3c`; gives it lower-cased.
pub fn check_color(field: &str, color: &str) -> Result<String, FieldError> {
    let ok = color.len() == 7
        && color.starts_with('#')
        && color[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(FieldError::new(field, "must be a colour like #1a2b3c"));
    }
    Ok(color.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "", "ada", "ada@", "@x.io", "a b@x.io", "ada@x", "a@.io", "a@x.io.", "a\"@x.io",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@x.io", "a".repeat(260))).is_err());
    }
}
