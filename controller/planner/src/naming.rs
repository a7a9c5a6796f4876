//! Deterministic SSM names. The same resources always give the same names, so a plan can
//! find what an earlier plan created by name, and every name satisfies SSM's pattern
//! `^[a-zA-Z0-9_\-.]{3,128}$` (baselines, windows, window targets and tasks:
//! <https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreatePatchBaseline.html>).
//!
//! Kubernetes names may be longer (253) than SSM's 128: a name that does not fit is cut
//! and ends with `-` and 8 hex digits of a hash of the whole name, so two long names that
//! share a prefix stay apart.
//!
//! `-` joins the parts and Kubernetes names may contain `-`, so two resources can meet on
//! one name (namespace `a-b`, policy `c` and namespace `a`, policy `b-c`); the desired
//! state reports that as a NameConflict rather than letting one overwrite the other.

use patchfleet_api::v1alpha1::OperatingSystem;

use crate::fingerprint::fnv1a64;

/// SSM's longest name.
pub const MAX_NAME_LEN: usize = 128;
/// SSM's shortest name.
pub const MIN_NAME_LEN: usize = 3;
/// Every baseline and window patchfleet creates starts with this.
pub const PREFIX: &str = "patchfleet-";

/// `patchfleet-<namespace>-<policy>-<os>`, with the operating system in lower case and
/// `_` written `-`, such as `patchfleet-patching-early-amazon-linux-2`.
pub fn baseline_name(namespace: &str, policy: &str, os: OperatingSystem) -> String {
    let os = os.as_str().to_ascii_lowercase().replace('_', "-");
    fit(&format!("{PREFIX}{namespace}-{policy}-{os}"))
}

/// The baseline a rollout stage's groups get for one release:
/// `patchfleet-<namespace>-<policy>-<os>-<stage>-<8 hex digits>`, the digits a hash of the
/// rollout, the stage and the release (token and cutoff; `-` for none yet). A new release
/// is a new baseline, so a node's patch state, which names the baseline it was judged
/// against, says which release it installed.
pub fn stage_baseline_name(
    namespace: &str,
    policy: &str,
    os: OperatingSystem,
    rollout: &str,
    stage: &str,
    release: Option<(&str, &str)>,
) -> String {
    let os = os.as_str().to_ascii_lowercase().replace('_', "-");
    let (token, cutoff) = release.unwrap_or(("-", "-"));
    let hash = fnv1a64(format!("{rollout}/{stage}/{token}/{cutoff}").as_bytes());
    let hash = format!("{hash:016x}");
    fit(&format!(
        "{PREFIX}{namespace}-{policy}-{os}-{stage}-{}",
        &hash[..8]
    ))
}

/// The name of AWS's predefined patch baseline that is the default for `os` until another
/// is registered, and that patchfleet registers again when the defaults it set go
/// (<https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-predefined-and-custom-patch-baselines.html>:
/// "These predefined patch baselines are used as the default patch baselines for each
/// operating system type unless you create your own patch baseline and designate it as
/// the default"; for Windows Server, AWS-DefaultPatchBaseline).
pub fn aws_default_baseline(os: OperatingSystem) -> &'static str {
    match os {
        OperatingSystem::Windows => "AWS-DefaultPatchBaseline",
        OperatingSystem::AmazonLinux => "AWS-AmazonLinuxDefaultPatchBaseline",
        OperatingSystem::AmazonLinux2 => "AWS-AmazonLinux2DefaultPatchBaseline",
        OperatingSystem::AmazonLinux2022 => "AWS-AmazonLinux2022DefaultPatchBaseline",
        OperatingSystem::AmazonLinux2023 => "AWS-AmazonLinux2023DefaultPatchBaseline",
        OperatingSystem::Ubuntu => "AWS-UbuntuDefaultPatchBaseline",
        OperatingSystem::RedhatEnterpriseLinux => "AWS-RedHatDefaultPatchBaseline",
        OperatingSystem::Suse => "AWS-SuseDefaultPatchBaseline",
        OperatingSystem::Centos => "AWS-CentOSDefaultPatchBaseline",
        OperatingSystem::OracleLinux => "AWS-OracleLinuxDefaultPatchBaseline",
        OperatingSystem::Debian => "AWS-DebianDefaultPatchBaseline",
        OperatingSystem::Macos => "AWS-MacOSDefaultPatchBaseline",
        // Not "AWS-RaspbianDefault...": the user guide lists AWS-DefaultRaspbianPatchBaseline.
        OperatingSystem::Raspbian => "AWS-DefaultRaspbianPatchBaseline",
        OperatingSystem::RockyLinux => "AWS-RockyLinuxDefaultPatchBaseline",
        OperatingSystem::AlmaLinux => "AWS-AlmaLinuxDefaultPatchBaseline",
    }
}

/// `patchfleet-<namespace>-<window>`.
pub fn window_name(namespace: &str, window: &str) -> String {
    fit(&format!("{PREFIX}{namespace}-{window}"))
}

/// `pg-<PatchGroup metadata.name>`: the prefix keeps one-letter Kubernetes names above
/// SSM's minimum of 3. A window's targets are all in its namespace, so unique.
pub fn target_name(group: &str) -> String {
    fit(&format!("pg-{group}"))
}

/// The task's own name (the API already holds it to SSM's pattern).
pub fn task_name(task: &str) -> String {
    fit(task)
}

fn is_ssm_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Whether `name` satisfies `^[a-zA-Z0-9_\-.]{3,128}$`.
pub fn is_valid_ssm_name(name: &str) -> bool {
    (MIN_NAME_LEN..=MAX_NAME_LEN).contains(&name.len()) && name.chars().all(is_ssm_name_char)
}

/// `name` when it is a valid SSM name; otherwise its valid characters (others written
/// `_`), cut to fit and followed by `-` and 8 hex digits of the hash of the whole
/// original name.
pub fn fit(name: &str) -> String {
    if is_valid_ssm_name(name) {
        return name.to_owned();
    }
    let suffix = format!("{:016x}", fnv1a64(name.as_bytes()));
    let suffix = &suffix[..8];
    let keep = MAX_NAME_LEN - 1 - suffix.len();
    let stem: String = name
        .chars()
        .map(|c| if is_ssm_name_char(c) { c } else { '_' })
        .take(keep)
        .collect();
    format!("{stem}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS_63: &str = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";

    fn name_253(fill: char) -> String {
        std::iter::repeat_n(fill, 253).collect()
    }

    #[test]
    fn short_names_are_kept_as_written() {
        let cases = [
            (
                baseline_name("patching", "early", OperatingSystem::AmazonLinux2),
                "patchfleet-patching-early-amazon-linux-2",
            ),
            (
                baseline_name("patching", "early", OperatingSystem::Windows),
                "patchfleet-patching-early-windows",
            ),
            (
                baseline_name("p", "x", OperatingSystem::RedhatEnterpriseLinux),
                "patchfleet-p-x-redhat-enterprise-linux",
            ),
            (
                window_name("patching", "monthly"),
                "patchfleet-patching-monthly",
            ),
            (target_name("a"), "pg-a"),
            (target_name("early"), "pg-early"),
            (task_name("install"), "install"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn longest_kubernetes_names_fit_ssm() {
        let long = name_253('p');
        let names = [
            baseline_name(NS_63, &long, OperatingSystem::RedhatEnterpriseLinux),
            baseline_name(NS_63, &long, OperatingSystem::AmazonLinux2023),
            window_name(NS_63, &long),
            target_name(&long),
            task_name(&"t".repeat(200)),
        ];
        for name in names {
            assert!(is_valid_ssm_name(&name), "{name} ({} chars)", name.len());
            assert_eq!(name.len(), MAX_NAME_LEN, "{name}");
        }
    }

    #[test]
    fn cut_names_keep_their_start_and_stay_apart() {
        let a = format!("{}a", name_253('p').split_at(252).0);
        let b = format!("{}b", name_253('p').split_at(252).0);
        let (na, nb) = (window_name(NS_63, &a), window_name(NS_63, &b));
        assert_ne!(na, nb, "names differing only past the cut must differ");
        assert!(na.starts_with(&format!("{PREFIX}{NS_63}-ppp")), "{na}");
        // The same input always gives the same name.
        assert_eq!(na, window_name(NS_63, &a));
        // Operating systems differ only at the end of a long baseline name.
        let long = name_253('p');
        assert_ne!(
            baseline_name(NS_63, &long, OperatingSystem::AmazonLinux2022),
            baseline_name(NS_63, &long, OperatingSystem::AmazonLinux2023)
        );
    }

    #[test]
    fn the_longest_name_that_fits_is_not_cut() {
        let exact = "x".repeat(MAX_NAME_LEN);
        assert_eq!(fit(&exact), exact);
        let over = "x".repeat(MAX_NAME_LEN + 1);
        let cut = fit(&over);
        assert_eq!(cut.len(), MAX_NAME_LEN);
        assert_ne!(cut, exact);
    }

    #[test]
    fn invalid_characters_are_replaced_and_hashed() {
        let name = fit("a b");
        assert!(is_valid_ssm_name(&name), "{name}");
        assert!(name.starts_with("a_b-"), "{name}");
        assert_ne!(fit("a b"), fit("a/b"), "the hash keeps the original apart");
    }
}
