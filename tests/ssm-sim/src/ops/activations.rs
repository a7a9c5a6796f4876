//! Hybrid activations and the nodes registered with them: CreateActivation,
//! DescribeActivations, DeleteActivation and DeregisterManagedInstance. Nodes register
//! through the control endpoint (`crate::registration`), as the SSM Agent would.

use serde_json::{Value, json};

use super::{Ctx, Obj, max_results, read_tags};
use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::state::{Activation, RegionState};
use crate::validate::{NEXT_TOKEN, Req, Str, as_object, nested_list, nested_str};

const DAY: f64 = 86_400.0;

// Constraints of the API reference's data types
// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html).
const DESCRIPTION: Str = Str::len(0, 256);
const DEFAULT_INSTANCE_NAME: Str = Str::pat(0, 256, r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$");
const IAM_ROLE: Str = Str::len(0, 64);
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html
pub const ACTIVATION_ID: Str = Str::pat(
    36,
    36,
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
);
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html
const MANAGED_INSTANCE_ID: Str = Str::pat(
    20,
    124,
    r"(^mi-[0-9a-f]{17}$)|(^eks_c:[0-9A-Za-z][A-Za-z0-9\-_]{0,99}_\w{17}$)",
);
/// RegistrationMetadataItem's Key (1-128) and Value (1-2048) share this pattern; the
/// regex crate has no look-ahead, so `not_blank` checks it.
const METADATA_PATTERN: &str = r"^(?!\s*$).+";

/// The only error besides InternalServerError that CreateActivation documents
/// (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html#API_CreateActivation_Errors).
fn invalid_parameters(message: String) -> ApiError {
    ApiError::new("InvalidParameters", message)
}

/// ExpirationDate: "You can specify a date up to 30 days in advance. If you don't provide
/// an expiration date, the activation code expires in 24 hours."
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html
fn expiration(requested: Option<f64>, now: f64) -> ApiResult<f64> {
    let Some(at) = requested else {
        return Ok(now + DAY);
    };
    if at <= now {
        return Err(invalid_parameters(format!(
            "ExpirationDate {} is not in the future.",
            clock::iso8601(at)
        )));
    }
    if at > now + 30.0 * DAY {
        return Err(invalid_parameters(format!(
            "ExpirationDate {} is more than 30 days in advance.",
            clock::iso8601(at)
        )));
    }
    Ok(at)
}

/// "Matches `^(?!\s*$).+`": at least one character that is not white space, no line break.
fn not_blank(req: &mut Req, path: &str, value: &str, max: usize) {
    let n = value.chars().count();
    if n == 0 || n > max {
        req.violations.check_str(path, value, Str::len(1, max));
    } else if value.trim().is_empty() || value.contains('\n') {
        req.violations.push(
            Some(value),
            path,
            format!("Member must satisfy regular expression pattern: {METADATA_PATTERN}"),
        );
    }
}

/// RegistrationMetadata: a list of required Key and Value pairs.
fn read_metadata(req: &mut Req) -> ApiResult<Vec<(String, String)>> {
    let Some(list) = req.opt_list("RegistrationMetadata")? else {
        return Ok(Vec::new());
    };
    let mut items = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let item = as_object(item, "RegistrationMetadataItem")?;
        let at = format!("registrationMetadata.{}.member", i + 1);
        let mut member = |name: &str, field: &str, max: usize| -> ApiResult<String> {
            let path = format!("{at}.{field}");
            match nested_str(item, name)? {
                Some(v) => {
                    not_blank(req, &path, v, max);
                    Ok(v.to_owned())
                }
                None => {
                    req.violations.push(None, &path, "Member must not be null");
                    Ok(String::new())
                }
            }
        };
        let key = member("Key", "key", 128)?;
        let value = member("Value", "value", 2048)?;
        items.push((key, value));
    }
    Ok(items)
}

pub fn create(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let description = req.opt_str("Description", DESCRIPTION)?;
    let default_instance_name = req.opt_str("DefaultInstanceName", DEFAULT_INSTANCE_NAME)?;
    let iam_role = req.req_str("IamRole", IAM_ROLE)?;
    // "The default value is 1."
    let registration_limit = req.opt_int("RegistrationLimit", 1, 1000)?.unwrap_or(1);
    let expiration_date = req.opt_timestamp("ExpirationDate")?;
    // TagList: at most 1000; "tags assigned to the activation are automatically applied
    // to the on-premises servers or VMs" that register with it (see `crate::registration`).
    let tags = read_tags(&mut req, "Tags")?.unwrap_or_default();
    let registration_metadata = read_metadata(&mut req)?;
    req.finish()?;
    let expiration = expiration(expiration_date, ctx.now)?;
    let id = clock::uuid();
    // AWS's codes are 20 characters ("dRmgnYaFv567vEXAMPLE" in the CLI reference).
    let code = clock::token(20);
    st.activations.insert(
        id.clone(),
        Box::new(Activation {
            id: id.clone(),
            code: code.clone(),
            description,
            default_instance_name,
            iam_role,
            registration_limit,
            registrations_count: 0,
            expiration,
            created: ctx.now,
            tags,
            registration_metadata,
        }),
    );
    Ok(json!({"ActivationId": id, "ActivationCode": code}))
}

/// One DescribeActivationsFilter: a key of the enum and the values any of which match.
/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeActivationsFilter.html
struct Filter {
    key: String,
    values: Vec<String>,
}

const FILTER_KEYS: &[&str] = &["ActivationIds", "DefaultInstanceName", "IamRole"];

fn read_filters(req: &mut Req) -> ApiResult<Vec<Filter>> {
    let Some(list) = req.opt_list("Filters")? else {
        return Ok(Vec::new());
    };
    let mut filters = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let f = as_object(f, "DescribeActivationsFilter")?;
        // FilterKey is optional in the model, so a filter without one passes validation;
        // the documented InvalidFilter ("The filter name isn't valid") answers it.
        let Some(key) = nested_str(f, "FilterKey")? else {
            return Err(ApiError::new(
                "InvalidFilter",
                "The filter name isn't valid: a filter needs a FilterKey.",
            ));
        };
        req.violations.check_enum(
            &format!("filters.{}.member.filterKey", i + 1),
            key,
            FILTER_KEYS,
        );
        let values = nested_list(f, "FilterValues")?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::serialization("FilterValues must be strings"))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        filters.push(Filter {
            key: key.to_owned(),
            values,
        });
    }
    Ok(filters)
}

fn matches(filter: &Filter, a: &Activation) -> bool {
    let value = match filter.key.as_str() {
        "ActivationIds" => Some(a.id.as_str()),
        "DefaultInstanceName" => a.default_instance_name.as_deref(),
        _ => Some(a.iam_role.as_str()),
    };
    value.is_some_and(|v| filter.values.iter().any(|f| f == v))
}

/// One Activation as DescribeActivations lists it: everything but the code.
fn view(a: &Activation, now: f64) -> Value {
    let tags: Vec<Value> = a
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Obj::new()
        .set("ActivationId", a.id.as_str())
        .opt("Description", a.description.clone())
        .opt("DefaultInstanceName", a.default_instance_name.clone())
        .set("IamRole", a.iam_role.as_str())
        .set("RegistrationLimit", a.registration_limit)
        .set("RegistrationsCount", a.registrations_count)
        .set("ExpirationDate", a.expiration)
        .set("Expired", a.expired(now))
        .set("CreatedDate", a.created)
        .set("Tags", tags)
        .build()
}

/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeActivations.html:
/// MaxResults 1-50 (no documented default: 50 here), in activation id order.
pub fn describe(ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let filters = read_filters(&mut req)?;
    let max = max_results(&mut req, 1, 50, 50)?;
    let token = req.opt_str("NextToken", NEXT_TOKEN)?;
    req.finish()?;
    let after = paging::decode(token.as_deref())?;
    let selected = st
        .activations
        .iter()
        .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
        .filter(|(_, a)| filters.iter().all(|f| matches(f, a)))
        .map(|(id, a)| (id.clone(), view(a, ctx.now)));
    let (items, next) = paging::page(selected, max);
    Ok(Obj::new()
        .set("ActivationList", items)
        .opt("NextToken", next)
        .build())
}

/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteActivation.html:
/// "Deleting an activation doesn't de-register managed nodes. You must manually
/// de-register managed nodes." An unknown (or already deleted) activation is
/// InvalidActivation: "The activation might have been deleted".
pub fn delete(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("ActivationId", ACTIVATION_ID)?;
    req.finish()?;
    if st.activations.remove(&id).is_none() {
        return Err(ApiError::new(
            "InvalidActivation",
            format!("Activation {id} does not exist. The activation might have been deleted."),
        ));
    }
    Ok(json!({}))
}

/// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeregisterManagedInstance.html:
/// "Removes the server or virtual machine from the list of registered servers": the node
/// and all SSM reports of it (instance information, patch states, compliance) go. Its
/// activation keeps its RegistrationsCount: re-registering needs an activation "not
/// already used on the maximum number of activations".
pub fn deregister(_ctx: &Ctx<'_>, st: &mut RegionState, mut req: Req) -> ApiResult<Value> {
    let id = req.req_str("InstanceId", MANAGED_INSTANCE_ID)?;
    req.finish()?;
    if st.instances.remove(&id).is_none() {
        return Err(ApiError::new(
            "InvalidInstanceId",
            format!("Instance Id {id} is not valid or does not belong to this account"),
        ));
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_defaults_to_a_day_and_stays_within_30_days() {
        let now = 1_000_000.0;
        assert_eq!(expiration(None, now), Ok(now + DAY));
        assert_eq!(
            expiration(Some(now + 30.0 * DAY), now),
            Ok(now + 30.0 * DAY)
        );
        for bad in [now - 1.0, now, now + 30.0 * DAY + 1.0] {
            let err = expiration(Some(bad), now).expect_err("refused");
            assert_eq!(err.code, "InvalidParameters");
        }
    }

    #[test]
    fn metadata_must_not_be_blank() {
        let mut req = Req::parse(
            br#"{"RegistrationMetadata":[{"Key":"k","Value":"v"},{"Key":"  ","Value":""}]}"#,
        )
        .expect("json");
        let items = read_metadata(&mut req).expect("read");
        assert_eq!(items.len(), 2);
        let err = req.finish().expect_err("blank key and empty value");
        assert!(err.message.starts_with("2 validation errors"), "{err}");
    }
}
