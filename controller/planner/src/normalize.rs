//! Canonical forms of baseline definitions. SSM treats some lists as sets (approved and
//! rejected patches, filter values) and may hand them back in another order than they were
//! written; sorting both the desired and the observed definition the same way keeps an
//! equal intent from looking like drift. Approval rules keep their order: it is the order
//! the baseline shows them in.

use patchfleet_api::v1alpha1::{BaselineSpec, PatchFilter, PatchSource};

/// `spec` with every order-free list sorted and deduplicated.
pub fn normalize_baseline(spec: &BaselineSpec) -> BaselineSpec {
    let mut spec = spec.clone();
    sort_set(&mut spec.approved_patches);
    sort_set(&mut spec.rejected_patches);
    normalize_filters(&mut spec.global_filters);
    for rule in &mut spec.approval_rules {
        normalize_filters(&mut rule.patch_filters);
    }
    for source in &mut spec.sources {
        sort_set(&mut source.products);
    }
    spec.sources
        .sort_by(|a: &PatchSource, b| a.name.cmp(&b.name));
    spec
}

/// Filters by key (one per key in SSM), values as a set.
fn normalize_filters(filters: &mut [PatchFilter]) {
    for filter in filters.iter_mut() {
        sort_set(&mut filter.values);
    }
    filters.sort_by_key(|f| f.key);
}

fn sort_set(values: &mut Vec<String>) {
    values.sort();
    values.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchfleet_api::v1alpha1::{
        ApprovalRule, ComplianceLevel, OperatingSystem, PatchFilterKey,
    };

    fn rule(days: i32, filters: Vec<PatchFilter>) -> ApprovalRule {
        ApprovalRule {
            patch_filters: filters,
            approve_after_days: Some(days),
            approve_until_date: None,
            compliance_level: ComplianceLevel::Critical,
            enable_non_security: false,
        }
    }

    fn filter(key: PatchFilterKey, values: &[&str]) -> PatchFilter {
        PatchFilter {
            key,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn order_free_lists_are_sorted_and_rule_order_kept() {
        let mut spec = BaselineSpec::new(OperatingSystem::AmazonLinux2);
        spec.approved_patches = vec!["b".into(), "a".into(), "b".into()];
        spec.rejected_patches = vec!["z".into(), "y".into()];
        spec.global_filters = vec![
            filter(PatchFilterKey::Severity, &["Low", "Critical"]),
            filter(PatchFilterKey::Classification, &["Security"]),
        ];
        spec.approval_rules = vec![
            rule(
                7,
                vec![filter(PatchFilterKey::Severity, &["Important", "Critical"])],
            ),
            rule(0, vec![filter(PatchFilterKey::Classification, &["Bugfix"])]),
        ];
        spec.sources = vec![
            PatchSource {
                name: "zeta".into(),
                products: vec!["B".into(), "A".into()],
                configuration: "z".into(),
            },
            PatchSource {
                name: "alpha".into(),
                products: vec!["A".into()],
                configuration: "a".into(),
            },
        ];

        let n = normalize_baseline(&spec);
        assert_eq!(n.approved_patches, ["a", "b"]);
        assert_eq!(n.rejected_patches, ["y", "z"]);
        assert_eq!(
            n.global_filters,
            [
                filter(PatchFilterKey::Classification, &["Security"]),
                filter(PatchFilterKey::Severity, &["Critical", "Low"]),
            ]
        );
        assert_eq!(
            n.approval_rules[0].approve_after_days,
            Some(7),
            "rule order kept"
        );
        assert_eq!(
            n.approval_rules[0].patch_filters[0].values,
            ["Critical", "Important"]
        );
        assert_eq!(n.approval_rules[1].approve_after_days, Some(0));
        let names: Vec<&str> = n.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(n.sources[1].products, ["A", "B"]);
        assert_eq!(normalize_baseline(&n), n, "normalizing is idempotent");
    }
}
