//! `/api/schema/*`: the form model's JSON Schema and component catalog are
//! served to every client, without signing in, from the one schema.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_schema_and_the_component_catalog_are_served() {
    let s = Server::start().await;
    let r = s.get("/api/schema/template", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/schema+json")
    );
    assert!(r.header("cache-control").unwrap().contains("max-age"));
    let schema = &r.json;
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let variants = schema["$defs"]["Component"]["oneOf"].as_array().unwrap();
    let types: Vec<&str> = variants
        .iter()
        .map(|v| v["properties"]["type"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 14);
    assert!(types.contains(&"section") && types.contains(&"select"));
    // Unknown keys are refused, and limits are stated.
    assert_eq!(
        schema["$defs"]["TextProperties"]["additionalProperties"],
        false
    );
    assert_eq!(
        schema["$defs"]["TextProperties"]["properties"]["placeholder"]["maxLength"],
        200
    );

    let r = s.get("/api/schema/components", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let catalog = &r.json;
    let text = find(&catalog["types"], "type", "text");
    assert_eq!(text["label"], "Short text");
    assert_eq!(text["group"], "input");
    assert_eq!(text["input"], true);
    let field = |list: &str, name: &str| find(&text[list], "name", name).clone();
    let placeholder = field("properties", "placeholder");
    assert_eq!(placeholder["kind"], "text");
    assert_eq!(placeholder["label"], "Placeholder");
    assert_eq!(placeholder["limits"]["maxLength"], 200);
    assert_eq!(field("validation", "maxLength")["kind"], "integer");
    let select = find(&catalog["types"], "type", "select");
    let options = find(&select["properties"], "name", "options");
    assert_eq!(options["required"], true);
    assert_eq!(options["kind"], "options");
    assert_eq!(options["limits"]["minItems"], 1);
    let section = find(&catalog["types"], "type", "section");
    assert_eq!(section["container"], true);
    assert!(section["validation"].as_array().unwrap().is_empty());
}
