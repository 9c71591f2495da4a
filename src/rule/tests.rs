//! Unit tests of the rule module's serde support (issue 21, defect 7: `Rule` had none).

#[cfg(feature = "json")]
mod serde_support {
    use crate::message::GeoBox;
    use crate::rule::{Dialect, Parser, Rule};

    fn round_trip(rule: &Rule) -> Rule {
        let json = serde_json::to_string(rule).expect("serialises");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn rules_of_both_dialects_round_trip_through_json() {
        for text in [
            r#"cat #Meme -grumpy ("Product Launch" OR acme)"#,
            r#""apple pie"~3 url:"example.com/x" point_radius:[2.35 48.85 10km] sample:10"#,
            "東京 contains:phone lang:en",
        ] {
            let rule = Rule::parse(text).expect("parses");
            assert_eq!(round_trip(&rule), rule, "{text}");
        }
        for text in ["Nintendo, wii fit", "c++,$acme example.com", "İ"] {
            let rule = Rule::parse_track(text).expect("parses");
            assert_eq!(round_trip(&rule), rule, "{text}");
        }
    }

    #[test]
    fn json_form_is_canonical_text_and_dialect() {
        let rule = Rule::parse("Apple OR pear").expect("parses");
        assert_eq!(
            serde_json::to_value(&rule).expect("serialises"),
            serde_json::json!({"value": "apple OR pear", "dialect": "rule"})
        );
        let rule: Rule = serde_json::from_str(r#"{"value":"Apple OR pear"}"#).expect("reads");
        assert_eq!(rule.dialect(), Dialect::Rule);
        assert_eq!(rule.to_string(), "apple OR pear");
    }

    #[test]
    fn track_filters_keep_follow_and_locations() {
        let boxes = [GeoBox { west: -122.75, south: 36.8, east: -121.75, north: 37.8 }];
        let follow = ["12".to_string(), "34".to_string()];
        let parser = Parser::new();
        for track in [Some("nintendo,wii fit"), None] {
            let rule = Rule::track_filter(track, &follow, &boxes, &parser).expect("builds");
            let value = serde_json::to_value(&rule).expect("serialises");
            assert_eq!(value["follow"], serde_json::json!(["12", "34"]));
            assert_eq!(value["locations"], serde_json::json!([[-122.75, 36.8, -121.75, 37.8]]));
            assert_eq!(round_trip(&rule), rule);
        }
        let only_follow = Rule::track_filter(None, &follow[..1], &[], &parser).expect("builds");
        assert_eq!(round_trip(&only_follow), only_follow);
    }

    #[test]
    fn invalid_json_rules_are_errors() {
        for (json, needle) in [
            (r#"{"value":"(apple"}"#, "unbalanced"),
            (r#"{"value":"x","dialekt":"track"}"#, "unknown field"),
            (r#"{"value":"x","dialect":"powertrack"}"#, "unknown variant"),
            (r#"{"value":"x","follow":["1"]}"#, "track dialect"),
            (r#"{"value":"","dialect":"track"}"#, "rule \"\""),
        ] {
            let e = serde_json::from_str::<Rule>(json).expect_err(json);
            assert!(e.to_string().contains(needle), "{json}: {e}");
        }
    }
}
