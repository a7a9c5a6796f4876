//! The managed nodes as SSM describes them: DescribeInstanceInformation with the fleet's
//! platforms, agents, connection states and sources, its two filter forms and their
//! rules, and paging at the documented page sizes.
//! https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html

use aws_sdk_ssm::types::{
    InstanceInformation, InstanceInformationFilter, InstanceInformationFilterKey,
    InstanceInformationStringFilter, PingStatus, PlatformType, ResourceType,
};
use serde_json::json;
use ssm_sim::config::DEFAULT_ACCOUNT;

use crate::common::{REGION, code, put_instances, ssm, start};

const LINUX: &str = "i-0000000000000000a";
const WINDOWS: &str = "i-0000000000000000b";
const OLD_AGENT: &str = "i-0000000000000000c";
const HYBRID: &str = "mi-0000000000000000d";
const AZURE: &str = "mi-0000000000000000e";

async fn mixed_fleet(server: &ssm_sim::Server) {
    put_instances(
        server,
        json!({"accountId": DEFAULT_ACCOUNT, "region": REGION, "instances": [
            {"instanceId": LINUX, "tags": {"Patch Group": "web"}},
            {"instanceId": WINDOWS, "platformType": "Windows", "tags": {"Patch Group": "db"}},
            {"instanceId": OLD_AGENT, "agentVersion": "3.1.0.0", "pingStatus": "ConnectionLost"},
            {"instanceId": HYBRID, "platformName": "Ubuntu", "platformVersion": "22.04",
             "operatingSystem": "UBUNTU"},
            {"instanceId": AZURE, "sourceType": "Microsoft.Compute/virtualMachines"},
        ]}),
    )
    .await;
}

fn by_id<'a>(list: &'a [InstanceInformation], id: &str) -> &'a InstanceInformation {
    list.iter()
        .find(|i| i.instance_id() == Some(id))
        .unwrap_or_else(|| panic!("{id} described"))
}

#[tokio::test]
async fn every_node_is_described_with_its_platform_agent_and_source() {
    let server = start().await;
    mixed_fleet(&server).await;
    let out = ssm(&server)
        .describe_instance_information()
        .max_results(50)
        .send()
        .await
        .expect("described");
    let list = out.instance_information_list();
    assert_eq!(list.len(), 5);
    assert_eq!(out.next_token(), None);

    let linux = by_id(list, LINUX);
    assert_eq!(linux.platform_type(), Some(&PlatformType::Linux));
    assert_eq!(linux.platform_name(), Some("Amazon Linux"));
    assert_eq!(linux.ping_status(), Some(&PingStatus::Online));
    assert_eq!(linux.is_latest_version(), Some(true));
    assert_eq!(linux.resource_type(), Some(&ResourceType::Ec2Instance));
    assert_eq!(
        linux.source_type().map(|s| s.as_str()),
        Some("AWS::EC2::Instance")
    );
    assert_eq!(
        linux.activation_id(),
        None,
        "EC2 instances have no activation"
    );
    assert_eq!(linux.registration_date(), None);

    // "This field doesn't indicate whether or not the latest version is installed on
    // Windows managed nodes."
    let windows = by_id(list, WINDOWS);
    assert_eq!(windows.platform_type(), Some(&PlatformType::Windows));
    assert_eq!(windows.is_latest_version(), Some(false));

    let old = by_id(list, OLD_AGENT);
    assert_eq!(old.agent_version(), Some("3.1.0.0"));
    assert_eq!(old.is_latest_version(), Some(false));
    assert_eq!(old.ping_status(), Some(&PingStatus::ConnectionLost));

    let hybrid = by_id(list, HYBRID);
    assert_eq!(hybrid.resource_type(), Some(&ResourceType::ManagedInstance));
    assert_eq!(hybrid.platform_name(), Some("Ubuntu"));
    assert_eq!(hybrid.platform_version(), Some("22.04"));
    assert!(hybrid.activation_id().is_some_and(|a| a.len() == 36));
    assert!(hybrid.registration_date().is_some());
    assert_eq!(
        hybrid.source_type().map(|s| s.as_str()),
        Some("AWS::SSM::ManagedInstance")
    );
    assert_eq!(
        by_id(list, AZURE).source_type().map(|s| s.as_str()),
        Some("Microsoft.Compute/virtualMachines")
    );
}

#[tokio::test]
async fn filters_select_by_key_and_tags_stand_alone() {
    let server = start().await;
    mixed_fleet(&server).await;
    let client = ssm(&server);
    let ids = |out: aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput| {
        out.instance_information_list()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let filter = |key: &str, values: &[&str]| {
        let mut f = InstanceInformationStringFilter::builder().key(key);
        for v in values {
            f = f.values(*v);
        }
        f.build().expect("filter")
    };
    let cases: [(&str, &[&str], &[&str]); 6] = [
        ("PlatformTypes", &["Windows"], &[WINDOWS]),
        ("PingStatus", &["ConnectionLost"], &[OLD_AGENT]),
        ("ResourceType", &["ManagedInstance"], &[HYBRID, AZURE]),
        (
            "SourceTypes",
            &["Microsoft.Compute/virtualMachines"],
            &[AZURE],
        ),
        ("tag:Patch Group", &["web", "db"], &[LINUX, WINDOWS]),
        ("tag-key", &["Patch Group"], &[LINUX, WINDOWS]),
    ];
    for (key, values, want) in cases {
        let out = client
            .describe_instance_information()
            .filters(filter(key, values))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert_eq!(ids(out), want, "{key}");
    }
    // The older filter list, keys of an enum.
    let legacy = InstanceInformationFilter::builder()
        .key(InstanceInformationFilterKey::PlatformTypes)
        .value_set("Linux")
        .build()
        .expect("filter");
    let out = client
        .describe_instance_information()
        .instance_information_filter_list(legacy.clone())
        .send()
        .await
        .expect("legacy filter");
    assert_eq!(ids(out), [LINUX, OLD_AGENT, HYBRID, AZURE]);

    // "Attempting to use InstanceInformationFilterList and Filters leads to an exception".
    let both = client
        .describe_instance_information()
        .instance_information_filter_list(legacy)
        .filters(filter("PingStatus", &["Online"]))
        .send()
        .await;
    assert_eq!(code(both), "InvalidInstanceInformationFilterValue");
    // "Tag filters can't be combined with other filter types."
    let mixed = client
        .describe_instance_information()
        .filters(filter("tag:Patch Group", &["web"]))
        .filters(filter("PingStatus", &["Online"]))
        .send()
        .await;
    assert_eq!(code(mixed), "InvalidInstanceInformationFilterValue");
    let unknown_key = client
        .describe_instance_information()
        .filters(filter("Color", &["red"]))
        .send()
        .await;
    assert_eq!(code(unknown_key), "InvalidFilterKey");
    let bad_value = client
        .describe_instance_information()
        .filters(filter("PingStatus", &["Asleep"]))
        .send()
        .await;
    assert_eq!(code(bad_value), "InvalidInstanceInformationFilterValue");
    // "If you specify a node ID that isn't valid or a node that you don't own, you
    // receive an error."
    let not_ours = client
        .describe_instance_information()
        .filters(filter("InstanceIds", &["i-0000000000000000f"]))
        .send()
        .await;
    assert_eq!(code(not_ours), "InvalidInstanceId");
}

#[tokio::test]
async fn pages_hold_five_to_fifty_nodes() {
    let server = start().await;
    let nodes: Vec<_> = (0..23)
        .map(|i| json!({"instanceId": format!("i-{i:017x}")}))
        .collect();
    put_instances(
        &server,
        json!({"accountId": DEFAULT_ACCOUNT, "region": REGION, "instances": nodes}),
    )
    .await;
    let client = ssm(&server);
    for bad in [4, 51] {
        let out = client
            .describe_instance_information()
            .max_results(bad)
            .send()
            .await;
        assert_eq!(code(out), "ValidationException", "MaxResults {bad}");
    }
    // The default page is 10 items.
    let first = client
        .describe_instance_information()
        .send()
        .await
        .expect("first page");
    assert_eq!(first.instance_information_list().len(), 10);
    let mut seen = 0;
    let mut pages = client
        .describe_instance_information()
        .max_results(5)
        .into_paginator()
        .send();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("page");
        seen += page.instance_information_list().len();
        count += 1;
    }
    assert_eq!((seen, count), (23, 5));
    let bad_token = client
        .describe_instance_information()
        .next_token("not-a-token")
        .send()
        .await;
    assert_eq!(code(bad_token), "InvalidNextToken");
}

#[tokio::test]
async fn properties_filter_with_operators_and_page_up_to_a_thousand() {
    use aws_sdk_ssm::types::{
        InstancePropertyFilter, InstancePropertyFilterKey, InstancePropertyFilterOperator,
        InstancePropertyStringFilter,
    };
    let server = start().await;
    mixed_fleet(&server).await;
    let client = ssm(&server);
    let with = |key: &str, operator: InstancePropertyFilterOperator, value: &str| {
        InstancePropertyStringFilter::builder()
            .key(key)
            .values(value)
            .operator(operator)
            .build()
            .expect("filter")
    };
    let ids = |out: aws_sdk_ssm::operation::describe_instance_properties::DescribeInstancePropertiesOutput| {
        out.instance_properties()
            .iter()
            .filter_map(|p| p.instance_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            "agents older than 3.2",
            with(
                "AgentVersion",
                InstancePropertyFilterOperator::LessThan,
                "3.2",
            ),
            vec![OLD_AGENT],
        ),
        (
            "not Linux",
            with(
                "PlatformTypes",
                InstancePropertyFilterOperator::NotEqual,
                "Linux",
            ),
            vec![WINDOWS],
        ),
        (
            "hybrid by prefix",
            with(
                "InstanceIds",
                InstancePropertyFilterOperator::BeginWith,
                "mi-",
            ),
            vec![HYBRID, AZURE],
        ),
    ];
    for (case, filter, want) in cases {
        let out = client
            .describe_instance_properties()
            .filters_with_operator(filter)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(ids(out), want, "{case}");
    }
    let legacy = client
        .describe_instance_properties()
        .instance_property_filter_list(
            InstancePropertyFilter::builder()
                .key(InstancePropertyFilterKey::PingStatus)
                .value_set("ConnectionLost")
                .build()
                .expect("filter"),
        )
        .send()
        .await
        .expect("legacy");
    assert_eq!(ids(legacy), [OLD_AGENT]);
    let all = client
        .describe_instance_properties()
        .max_results(1000)
        .send()
        .await
        .expect("all");
    assert_eq!(all.instance_properties().len(), 5);
    let too_many = client
        .describe_instance_properties()
        .max_results(1001)
        .send()
        .await;
    assert_eq!(code(too_many), "ValidationException");
    let unknown = client
        .describe_instance_properties()
        .filters_with_operator(with("Color", InstancePropertyFilterOperator::Equal, "red"))
        .send()
        .await;
    assert_eq!(code(unknown), "InvalidFilterKey");
}
