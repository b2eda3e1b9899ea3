//! Every class parameter, interval and Go duration the controllers parse, over arbitrary
//! input: a value or an error naming the key, never a panic.

use lifeline_api::parse_go_duration;
use lifeline_api::replication::{ClassParameters, SchedulingInterval};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "replication\\.storage\\.openshift\\.io/(replication|group-replication)-secret-(name|namespace)",
        "replication\\.storage\\.openshift\\.io/\\PC{0,12}",
        Just("schedulingInterval".to_owned()),
        "\\PC{0,16}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,22}(\\.[0-9]{0,3})?(ns|us|µs|ms|s|m|h|d|é)?([0-9]+[smh])?",
        "\\PC{0,24}"
    ]
}

proptest! {
    #[test]
    fn class_parameters_parse_or_name_the_key(
        parameters in prop::collection::btree_map(key(), value(), 0..8),
    ) {
        if let Ok(parsed) = ClassParameters::parse(&parameters) {
            let _ = parsed.scheduling_interval();
        }
    }

    #[test]
    fn intervals_and_durations_never_panic(text in value()) {
        let _ = text.parse::<SchedulingInterval>();
        let _ = parse_go_duration(&text);
    }
}
