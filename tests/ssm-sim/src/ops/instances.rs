//! The managed nodes themselves: DescribeInstanceInformation
//! (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html)
//! and DescribeInstanceProperties.
//! The nodes are the account-region's simulated fleet (`crate::fleet`).

use serde_json::Value;

use super::{Ctx, Obj, max_results};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{Instance, RegionState};
use crate::validate::{NEXT_TOKEN, Req, as_object, nested_list, nested_str};

/// The keys of the older InstanceInformationFilterList (an enum of the API model).
const LEGACY_KEYS: &[&str] = &[
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
];

/// The keys of `Filters` besides `tag-key` and `tag:KEY`.
const FILTER_KEYS: &[&str] = &[
    "ActivationIds",
    "AgentVersion",
    "AssociationStatus",
    "IamRole",
    "InstanceIds",
    "PingStatus",
    "PlatformTypes",
    "ResourceType",
    "SourceIds",
    "SourceTypes",
];

/// Values a key accepts, where the API reference lists them ("Inactive" is deprecated
/// but still a valid PingStatus).
fn valid_values(key: &str) -> Option<&'static [&'static str]> {
    match key {
        "PingStatus" => Some(&["Online", "ConnectionLost", "Inactive"]),
        "PlatformTypes" => Some(&["Windows", "Linux", "MacOS"]),
        "ResourceType" => Some(&["EC2Instance", "ManagedInstance"]),
        "AssociationStatus" => Some(&["Success", "Pending", "Failed"]),
        _ => None,
    }
}

fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidInstanceInformationFilterValue", message)
}

/// One filter: a key and the values any of which a node must have.
struct Filter {
    key: String,
    values: Vec<String>,
}

/// Reads `InstanceInformationFilterList` ({key, valueSet}) or `Filters` ({Key, Values}):
/// "Attempting to use InstanceInformationFilterList and Filters leads to an exception
/// error" (the reference names no code: InvalidInstanceInformationFilterValue here).
fn read_filters(req: &mut Req) -> ApiResult<Vec<Filter>> {
    let legacy = req.opt_list("InstanceInformationFilterList")?;
    let current = req.opt_list("Filters")?;
    let (list, key_field, values_field, legacy_form) = match (legacy, current) {
        (Some(_), Some(_)) => {
            return Err(invalid_value(
                "InstanceInformationFilterList and Filters can't be used together",
            ));
        }
        (Some(list), None) => (list, "key", "valueSet", true),
        (None, Some(list)) => (list, "Key", "Values", false),
        (None, None) => return Ok(Vec::new()),
    };
    let mut filters = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = as_object(f, "filter")?;
        let key = nested_str(f, key_field)?.unwrap_or_default().to_owned();
        let values: Vec<String> = nested_list(f, values_field)?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let at = if legacy_form {
            format!("instanceInformationFilterList.{}.member", i + 1)
        } else {
            format!("filters.{}.member", i + 1)
        };
        if legacy_form {
            req.violations
                .check_enum(&format!("{at}.key"), &key, LEGACY_KEYS);
        } else if key.is_empty() {
            req.violations.push(
                Some(""),
                &format!("{at}.key"),
                "Member must have length greater than or equal to 1",
            );
        }
        req.violations
            .check_count(&format!("{at}.{values_field}"), values.len(), 1, 100);
        filters.push(Filter { key, values });
    }
    Ok(filters)
}

/// What the schema cannot say: tag filters alone, known keys, valid values.
fn check_filters(filters: &[Filter]) -> ApiResult<()> {
    let tags = filters.iter().filter(|f| is_tag_key(&f.key)).count();
    if tags > 0 && tags < filters.len() {
        return Err(invalid_value(
            "Tag filters can't be combined with other filter types",
        ));
    }
    for f in filters {
        if !is_tag_key(&f.key) && !FILTER_KEYS.contains(&f.key.as_str()) {
            return Err(ApiError::new(
                "InvalidFilterKey",
                format!("The specified key isn't valid: {}", f.key),
            ));
        }
        if let Some(allowed) = valid_values(&f.key)
            && let Some(bad) = f.values.iter().find(|v| !allowed.contains(&v.as_str()))
        {
            return Err(invalid_value(format!(
                "{bad} is not a valid value for {}; valid values: {}",
                f.key,
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn is_tag_key(key: &str) -> bool {
    key == "tag-key" || key.starts_with("tag:")
}

fn resource_type(id: &str) -> &'static str {
    if id.starts_with("mi-") {
        "ManagedInstance"
    } else {
        "EC2Instance"
    }
}

/// A node's value for a filter key of either describe call; None where the node has
/// none (the simulator runs no State Manager associations and associates no documents).
fn node_value<'n>(key: &str, id: &'n str, node: &'n Instance) -> Option<&'n str> {
    let info = &node.info;
    match key {
        "InstanceIds" | "SourceIds" => Some(id),
        "AgentVersion" => Some(&info.agent_version),
        "PingStatus" => Some(&info.ping_status),
        "PlatformTypes" => Some(&info.platform_type),
        "ActivationIds" => info.activation_id.as_deref(),
        "IamRole" => info.iam_role.as_deref(),
        "ResourceType" => Some(resource_type(id)),
        "SourceTypes" => Some(&info.source_type),
        _ => None,
    }
}

fn matches(filter: &Filter, id: &str, node: &Instance) -> bool {
    let any = |value: Option<&str>| value.is_some_and(|v| filter.values.iter().any(|f| f == v));
    match filter.key.as_str() {
        "tag-key" => filter.values.iter().any(|k| node.tags.contains_key(k)),
        key => match key.strip_prefix("tag:") {
            Some(tag) => any(node.tags.get(tag).map(String::as_str)),
            None => any(node_value(key, id, node)),
        },
    }
}

/// What both describe calls say of a node: InstanceProperty has InstanceInformation's
/// fields but IsLatestVersion (and the EC2 facts the simulator does not model).
fn node_fields(id: &str, node: &Instance) -> Obj {
    let info = &node.info;
    let hybrid = id.starts_with("mi-");
    Obj::new()
        .set("InstanceId", id)
        .set("PingStatus", info.ping_status.as_str())
        .set("LastPingDateTime", info.last_ping)
        .set("AgentVersion", info.agent_version.as_str())
        .set("PlatformType", info.platform_type.as_str())
        .set("PlatformName", info.platform_name.as_str())
        .set("PlatformVersion", info.platform_version.as_str())
        .opt("ActivationId", info.activation_id.clone())
        .opt("IamRole", info.iam_role.clone())
        .opt("RegistrationDate", hybrid.then_some(info.registered))
        .set("ResourceType", resource_type(id))
        .set("IPAddress", info.ip_address.as_str())
        .set("ComputerName", info.computer_name.as_str())
        .set("SourceId", id)
        .set("SourceType", info.source_type.as_str())
}

/// One InstanceInformation. IsLatestVersion: "Indicates whether the latest version of SSM
/// Agent is running on your Linux managed node. This field doesn't indicate whether or not
/// the latest version is installed on Windows managed nodes": false for Windows.
fn information(id: &str, node: &Instance) -> Value {
    let info = &node.info;
    node_fields(id, node)
        // "The name assigned to an on-premises server ... when it is activated": the
        // activation's DefaultInstanceName (InstanceProperty's Name is an EC2 tag instead).
        .opt("Name", info.name.clone())
        .set(
            "IsLatestVersion",
            info.platform_type != "Windows" && info.latest_agent,
        )
        .build()
}

pub fn describe_information(
    _ctx: &Ctx<'_>,
    st: &mut RegionState,
    mut req: Req,
) -> ApiResult<Value> {
    let filters = read_filters(&mut req)?;
    // MaxResultsEC2Compatible: 5 to 50, "The default value is 10 items."
    let max = max_results(&mut req, 5, 50, 10)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    check_filters(&filters)?;
    let after = paging::decode(token.as_deref())?;
    // "If you specify a node ID that isn't valid or a node that you don't own, you receive
    // an error."
    for filter in filters.iter().filter(|f| f.key == "InstanceIds") {
        if let Some(unknown) = filter
            .values
            .iter()
            .find(|id| !st.instances.contains_key(*id))
        {
            return Err(ApiError::new(
                "InvalidInstanceId",
                format!("Instance Id {unknown} is not valid or does not belong to this account"),
            ));
        }
    }
    let selected = st
        .instances
        .iter()
        .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
        .filter(|(id, node)| filters.iter().all(|f| matches(f, id, node)))
        .map(|(id, node)| (id.clone(), information(id, node)));
    let (items, next) = paging::page(selected, max);
    Ok(Obj::new()
        .set("InstanceInformationList", items)
        .opt("NextToken", next)
        .build())
}

/// The keys of DescribeInstanceProperties' InstancePropertyFilterList (an enum of the API
/// model), which FiltersWithOperator takes too.
const PROPERTY_KEYS: &[&str] = &[
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "DocumentName",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
];
const OPERATORS: &[&str] = &["Equal", "NotEqual", "BeginWith", "LessThan", "GreaterThan"];

/// A property filter: the key, its values, how a node's value compares with them.
struct PropertyFilter {
    key: String,
    values: Vec<String>,
    operator: String,
}

/// Reads InstancePropertyFilterList ({key, valueSet}, Equal) or FiltersWithOperator
/// ({Key, Values, Operator}): 1 to 40 filters of 1 to 40 values each. Using both is
/// refused as for DescribeInstanceInformation (the reference names no code).
fn read_property_filters(req: &mut Req) -> ApiResult<Vec<PropertyFilter>> {
    let legacy = req.opt_list("InstancePropertyFilterList")?;
    let current = req.opt_list("FiltersWithOperator")?;
    let (list, legacy_form) = match (legacy, current) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "InvalidInstancePropertyFilterValue",
                "InstancePropertyFilterList and FiltersWithOperator can't be used together",
            ));
        }
        (Some(list), None) => (list, true),
        (None, Some(list)) => (list, false),
        (None, None) => return Ok(Vec::new()),
    };
    let path = if legacy_form {
        "instancePropertyFilterList"
    } else {
        "filtersWithOperator"
    };
    req.violations.check_count(path, list.len(), 1, 40);
    let mut filters = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = as_object(f, "filter")?;
        let at = format!("{path}.{}.member", i + 1);
        let (key_field, values_field) = if legacy_form {
            ("key", "valueSet")
        } else {
            ("Key", "Values")
        };
        let key = nested_str(f, key_field)?.unwrap_or_default().to_owned();
        let values: Vec<String> = nested_list(f, values_field)?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let operator = if legacy_form {
            req.violations
                .check_enum(&format!("{at}.key"), &key, PROPERTY_KEYS);
            "Equal".to_owned()
        } else {
            let operator = nested_str(f, "Operator")?.unwrap_or_default().to_owned();
            req.violations
                .check_enum(&format!("{at}.operator"), &operator, OPERATORS);
            operator
        };
        req.violations
            .check_count(&format!("{at}.{values_field}"), values.len(), 1, 40);
        filters.push(PropertyFilter {
            key,
            values,
            operator,
        });
    }
    Ok(filters)
}

/// Dotted versions compare number by number (3.10 after 3.9); other values as text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let numbers = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (numbers(a), numbers(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

fn property_matches(filter: &PropertyFilter, id: &str, node: &Instance) -> bool {
    let Some(value) = node_value(&filter.key, id, node) else {
        return filter.operator == "NotEqual";
    };
    let any = |f: &dyn Fn(&str) -> bool| filter.values.iter().any(|v| f(v));
    match filter.operator.as_str() {
        "Equal" => any(&|v| v == value),
        "NotEqual" => !any(&|v| v == value),
        "BeginWith" => any(&|v| value.starts_with(v)),
        "LessThan" => any(&|v| compare(value, v).is_lt()),
        _ => any(&|v| compare(value, v).is_gt()),
    }
}

/// DescribeInstanceProperties
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceProperties.html):
/// the fleet's nodes, MaxResults 5 to 1000.
pub fn describe_properties(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let filters = read_property_filters(&mut req)?;
    let max = max_results(&mut req, 5, 1000, 10)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    if let Some(f) = filters
        .iter()
        .find(|f| !PROPERTY_KEYS.contains(&f.key.as_str()))
    {
        return Err(ApiError::new(
            "InvalidFilterKey",
            format!("The specified key isn't valid: {}", f.key),
        ));
    }
    for f in filters
        .iter()
        .filter(|f| f.key == "InstanceIds" && f.operator == "Equal")
    {
        if let Some(unknown) = f.values.iter().find(|id| !st.instances.contains_key(*id)) {
            return Err(ApiError::new(
                "InvalidInstanceId",
                format!("Instance Id {unknown} is not valid or does not belong to this account"),
            ));
        }
    }
    let after = paging::decode(token.as_deref())?;
    let selected = st
        .instances
        .iter()
        .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
        .filter(|(id, node)| filters.iter().all(|f| property_matches(f, id, node)))
        .map(|(id, node)| (id.clone(), node_fields(id, node).build()));
    let (items, next) = paging::page(selected, max);
    Ok(Obj::new()
        .set("InstanceProperties", items)
        .opt("NextToken", next)
        .build())
}
