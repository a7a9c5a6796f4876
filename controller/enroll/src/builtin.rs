//! AWS's published certificates for EC2 instance identity documents, built in
//! (aws-certificates/README.md says where each comes from, what it covers and what is
//! not covered; `patchfleet enroll --aws-certificates` adds more).

use crate::TrustError;
use crate::aws::AwsTrust;

/// Every built-in certificate: its file under aws-certificates/ and its PEM.
pub const BUILTIN_AWS_CERTIFICATES: &[(&str, &str)] = &[
    (
        "pkcs7-dsa-af-south-1.pem",
        include_str!("../aws-certificates/pkcs7-dsa-af-south-1.pem"),
    ),
    (
        "pkcs7-dsa-ap-east-1.pem",
        include_str!("../aws-certificates/pkcs7-dsa-ap-east-1.pem"),
    ),
    (
        "pkcs7-dsa-ap-south-2.pem",
        include_str!("../aws-certificates/pkcs7-dsa-ap-south-2.pem"),
    ),
    (
        "pkcs7-dsa-ap-southeast-3.pem",
        include_str!("../aws-certificates/pkcs7-dsa-ap-southeast-3.pem"),
    ),
    (
        "pkcs7-dsa-ap-southeast-4.pem",
        include_str!("../aws-certificates/pkcs7-dsa-ap-southeast-4.pem"),
    ),
    (
        "pkcs7-dsa-default.pem",
        include_str!("../aws-certificates/pkcs7-dsa-default.pem"),
    ),
    (
        "pkcs7-dsa-eu-central-2.pem",
        include_str!("../aws-certificates/pkcs7-dsa-eu-central-2.pem"),
    ),
    (
        "pkcs7-dsa-eu-south-1.pem",
        include_str!("../aws-certificates/pkcs7-dsa-eu-south-1.pem"),
    ),
    (
        "pkcs7-dsa-eu-south-2.pem",
        include_str!("../aws-certificates/pkcs7-dsa-eu-south-2.pem"),
    ),
    (
        "pkcs7-dsa-me-central-1.pem",
        include_str!("../aws-certificates/pkcs7-dsa-me-central-1.pem"),
    ),
    (
        "pkcs7-dsa-me-south-1.pem",
        include_str!("../aws-certificates/pkcs7-dsa-me-south-1.pem"),
    ),
    (
        "pkcs7-rsa-china.pem",
        include_str!("../aws-certificates/pkcs7-rsa-china.pem"),
    ),
    (
        "rsa2048-af-south-1.pem",
        include_str!("../aws-certificates/rsa2048-af-south-1.pem"),
    ),
    (
        "rsa2048-ap-east-1.pem",
        include_str!("../aws-certificates/rsa2048-ap-east-1.pem"),
    ),
    (
        "rsa2048-ap-northeast-1.pem",
        include_str!("../aws-certificates/rsa2048-ap-northeast-1.pem"),
    ),
    (
        "rsa2048-ap-northeast-2.pem",
        include_str!("../aws-certificates/rsa2048-ap-northeast-2.pem"),
    ),
    (
        "rsa2048-ap-northeast-3.pem",
        include_str!("../aws-certificates/rsa2048-ap-northeast-3.pem"),
    ),
    (
        "rsa2048-ap-south-1.pem",
        include_str!("../aws-certificates/rsa2048-ap-south-1.pem"),
    ),
    (
        "rsa2048-ap-south-2.pem",
        include_str!("../aws-certificates/rsa2048-ap-south-2.pem"),
    ),
    (
        "rsa2048-ap-southeast-1.pem",
        include_str!("../aws-certificates/rsa2048-ap-southeast-1.pem"),
    ),
    (
        "rsa2048-ap-southeast-2.pem",
        include_str!("../aws-certificates/rsa2048-ap-southeast-2.pem"),
    ),
    (
        "rsa2048-ap-southeast-3.pem",
        include_str!("../aws-certificates/rsa2048-ap-southeast-3.pem"),
    ),
    (
        "rsa2048-ap-southeast-4.pem",
        include_str!("../aws-certificates/rsa2048-ap-southeast-4.pem"),
    ),
    (
        "rsa2048-ca-central-1.pem",
        include_str!("../aws-certificates/rsa2048-ca-central-1.pem"),
    ),
    (
        "rsa2048-ca-west-1.pem",
        include_str!("../aws-certificates/rsa2048-ca-west-1.pem"),
    ),
    (
        "rsa2048-cn-north-1.pem",
        include_str!("../aws-certificates/rsa2048-cn-north-1.pem"),
    ),
    (
        "rsa2048-cn-northwest-1.pem",
        include_str!("../aws-certificates/rsa2048-cn-northwest-1.pem"),
    ),
    (
        "rsa2048-eu-central-1.pem",
        include_str!("../aws-certificates/rsa2048-eu-central-1.pem"),
    ),
    (
        "rsa2048-eu-central-2.pem",
        include_str!("../aws-certificates/rsa2048-eu-central-2.pem"),
    ),
    (
        "rsa2048-eu-north-1.pem",
        include_str!("../aws-certificates/rsa2048-eu-north-1.pem"),
    ),
    (
        "rsa2048-eu-south-1.pem",
        include_str!("../aws-certificates/rsa2048-eu-south-1.pem"),
    ),
    (
        "rsa2048-eu-south-2.pem",
        include_str!("../aws-certificates/rsa2048-eu-south-2.pem"),
    ),
    (
        "rsa2048-eu-west-1.pem",
        include_str!("../aws-certificates/rsa2048-eu-west-1.pem"),
    ),
    (
        "rsa2048-eu-west-2.pem",
        include_str!("../aws-certificates/rsa2048-eu-west-2.pem"),
    ),
    (
        "rsa2048-eu-west-3.pem",
        include_str!("../aws-certificates/rsa2048-eu-west-3.pem"),
    ),
    (
        "rsa2048-il-central-1.pem",
        include_str!("../aws-certificates/rsa2048-il-central-1.pem"),
    ),
    (
        "rsa2048-me-central-1.pem",
        include_str!("../aws-certificates/rsa2048-me-central-1.pem"),
    ),
    (
        "rsa2048-me-south-1.pem",
        include_str!("../aws-certificates/rsa2048-me-south-1.pem"),
    ),
    (
        "rsa2048-sa-east-1.pem",
        include_str!("../aws-certificates/rsa2048-sa-east-1.pem"),
    ),
    (
        "rsa2048-us-east-1.pem",
        include_str!("../aws-certificates/rsa2048-us-east-1.pem"),
    ),
    (
        "rsa2048-us-east-2.pem",
        include_str!("../aws-certificates/rsa2048-us-east-2.pem"),
    ),
    (
        "rsa2048-us-gov-east-1.pem",
        include_str!("../aws-certificates/rsa2048-us-gov-east-1.pem"),
    ),
    (
        "rsa2048-us-gov-west-1.pem",
        include_str!("../aws-certificates/rsa2048-us-gov-west-1.pem"),
    ),
    (
        "rsa2048-us-west-1.pem",
        include_str!("../aws-certificates/rsa2048-us-west-1.pem"),
    ),
    (
        "rsa2048-us-west-2.pem",
        include_str!("../aws-certificates/rsa2048-us-west-2.pem"),
    ),
    (
        "single-source/rsa2048-ap-east-2.pem",
        include_str!("../aws-certificates/single-source/rsa2048-ap-east-2.pem"),
    ),
    (
        "single-source/rsa2048-ap-southeast-5.pem",
        include_str!("../aws-certificates/single-source/rsa2048-ap-southeast-5.pem"),
    ),
    (
        "single-source/rsa2048-ap-southeast-6.pem",
        include_str!("../aws-certificates/single-source/rsa2048-ap-southeast-6.pem"),
    ),
    (
        "single-source/rsa2048-ap-southeast-7.pem",
        include_str!("../aws-certificates/single-source/rsa2048-ap-southeast-7.pem"),
    ),
    (
        "single-source/rsa2048-eusc-de-east-1.pem",
        include_str!("../aws-certificates/single-source/rsa2048-eusc-de-east-1.pem"),
    ),
    (
        "single-source/rsa2048-mx-central-1.pem",
        include_str!("../aws-certificates/single-source/rsa2048-mx-central-1.pem"),
    ),
];

/// A trust holding every built-in certificate.
pub fn builtin_trust() -> Result<AwsTrust, TrustError> {
    let mut bundle = String::new();
    for (_, pem) in BUILTIN_AWS_CERTIFICATES {
        bundle.push_str(pem);
        bundle.push('\n');
    }
    AwsTrust::from_pem(bundle.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_certificate_is_built_in_and_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("aws-certificates");
        let mut shipped = Vec::new();
        for sub in ["", "single-source"] {
            for entry in std::fs::read_dir(dir.join(sub)).expect("the certificates directory") {
                let name = entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                if name.ends_with(".pem") {
                    shipped.push(if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    });
                }
            }
        }
        shipped.sort();
        let mut built_in: Vec<String> = BUILTIN_AWS_CERTIFICATES
            .iter()
            .map(|(f, _)| (*f).to_owned())
            .collect();
        built_in.sort();
        assert_eq!(built_in, shipped);
        let trust = builtin_trust().expect("the built-in certificates load");
        assert_eq!(trust.len(), BUILTIN_AWS_CERTIFICATES.len());
    }
}
