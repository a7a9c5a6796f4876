"""Conformance: unmodified boto3 (and the AWS CLI) against the simulator."""

import json
import os
import subprocess
import urllib.error

import botocore.exceptions
import pytest

from conftest import KEY, SECRET, client, control, error_code

RULES = {
    "PatchRules": [
        {
            "PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
            "ApproveAfterDays": 7,
        }
    ]
}


def new_window(ssm, name="mw-test", **extra):
    args = dict(Name=name, Schedule="cron(0 2 ? * SUN *)", Duration=4, Cutoff=1, AllowUnassociatedTargets=False)
    args.update(extra)
    return ssm.create_maintenance_window(**args)["WindowId"]


def test_baseline_lifecycle(sim):
    ssm = client(sim)
    bid = ssm.create_patch_baseline(
        Name="web-al2",
        OperatingSystem="AMAZON_LINUX_2",
        ApprovalRules=RULES,
        Description="web",
        Tags=[{"Key": "team", "Value": "web"}],
    )["BaselineId"]
    got = ssm.get_patch_baseline(BaselineId=bid)
    assert got["Name"] == "web-al2"
    assert got["OperatingSystem"] == "AMAZON_LINUX_2"
    assert got["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"] == 7
    assert got["CreatedDate"].year >= 2024

    upd = ssm.update_patch_baseline(BaselineId=bid, Description="changed")
    assert upd["Description"] == "changed"
    assert upd["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"] == 7

    mine = ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["Self"]}])
    assert [b["BaselineId"] for b in mine["BaselineIdentities"]] == [bid]
    aws = ssm.describe_patch_baselines(Filters=[{"Key": "OWNER", "Values": ["AWS"]}])["BaselineIdentities"]
    assert all(b["BaselineName"].startswith("AWS-") for b in aws)
    ubuntu = ssm.describe_patch_baselines(Filters=[{"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}])
    assert [b["BaselineName"] for b in ubuntu["BaselineIdentities"]] == ["AWS-UbuntuDefaultPatchBaseline"]

    assert ssm.delete_patch_baseline(BaselineId=bid)["BaselineId"] == bid
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.get_patch_baseline(BaselineId=bid)
    assert error_code(e) == "DoesNotExistException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_baseline_paging_with_paginator(sim):
    ssm = client(sim)
    for i in range(7):
        ssm.create_patch_baseline(Name=f"fleet-{i}", OperatingSystem="UBUNTU")
    pages = ssm.get_paginator("describe_patch_baselines").paginate(
        Filters=[{"Key": "NAME_PREFIX", "Values": ["fleet-"]}], PaginationConfig={"PageSize": 3}
    )
    sizes = [len(p["BaselineIdentities"]) for p in pages]
    assert sizes == [3, 3, 1]


def test_validation_errors(sim):
    ssm = client(sim, validate=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.create_patch_baseline(Name="bad name!")
    assert error_code(e) == "ValidationException"
    assert "Member must satisfy regular expression pattern" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_patch_baselines(MaxResults=0)
    assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_window(ssm, Duration=2, Cutoff=2)
    assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_window(ssm, Schedule="cron(0 2 * * SUN *)")
    assert error_code(e) == "ValidationException"


def test_patch_groups_and_defaults(sim):
    ssm = client(sim)
    win = ssm.create_patch_baseline(Name="win", OperatingSystem="WINDOWS")["BaselineId"]
    al2 = ssm.create_patch_baseline(Name="al2", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    other = ssm.create_patch_baseline(Name="al2-other", OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=win, PatchGroup="prod")
    ssm.register_patch_baseline_for_patch_group(BaselineId=al2, PatchGroup="prod")
    with pytest.raises(ssm.exceptions.AlreadyExistsException):
        ssm.register_patch_baseline_for_patch_group(BaselineId=other, PatchGroup="prod")
    got = ssm.get_patch_baseline_for_patch_group(PatchGroup="prod", OperatingSystem="AMAZON_LINUX_2")
    assert got["BaselineId"] == al2
    groups = ssm.describe_patch_groups()["Mappings"]
    assert sorted(m["BaselineIdentity"]["OperatingSystem"] for m in groups) == ["AMAZON_LINUX_2", "WINDOWS"]
    with pytest.raises(ssm.exceptions.ResourceInUseException):
        ssm.delete_patch_baseline(BaselineId=al2)
    ssm.deregister_patch_baseline_for_patch_group(BaselineId=al2, PatchGroup="prod")
    default = ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")["BaselineId"]
    fallback = ssm.get_patch_baseline_for_patch_group(PatchGroup="prod", OperatingSystem="AMAZON_LINUX_2")
    assert fallback["BaselineId"] == default
    ssm.register_default_patch_baseline(BaselineId=other)
    assert ssm.get_default_patch_baseline(OperatingSystem="AMAZON_LINUX_2")["BaselineId"] == other


def test_window_targets_tasks(sim):
    ssm = client(sim)
    mw = new_window(ssm, Tags=[{"Key": "env", "Value": "prod"}])
    assert ssm.get_maintenance_window(WindowId=mw)["Enabled"] is True
    ssm.update_maintenance_window(WindowId=mw, Enabled=False)
    listed = ssm.describe_maintenance_windows(Filters=[{"Key": "Enabled", "Values": ["false"]}])
    assert [w["WindowId"] for w in listed["WindowIdentities"]] == [mw]

    tid = ssm.register_target_with_maintenance_window(
        WindowId=mw, ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["prod"]}]
    )["WindowTargetId"]
    upd = ssm.update_maintenance_window_target(WindowId=mw, WindowTargetId=tid, Name="prod-nodes")
    assert upd["Name"] == "prod-nodes"
    assert ssm.describe_maintenance_window_targets(WindowId=mw)["Targets"][0]["WindowTargetId"] == tid

    task = ssm.register_task_with_maintenance_window(
        WindowId=mw,
        TaskType="RUN_COMMAND",
        TaskArn="AWS-RunPatchBaseline",
        Targets=[{"Key": "WindowTargetIds", "Values": [tid]}],
        MaxConcurrency="10%",
        MaxErrors="1",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Install"]}}},
    )["WindowTaskId"]
    got = ssm.get_maintenance_window_task(WindowId=mw, WindowTaskId=task)
    assert got["TaskInvocationParameters"]["RunCommand"]["Parameters"] == {"Operation": ["Install"]}
    ssm.update_maintenance_window_task(WindowId=mw, WindowTaskId=task, Priority=5)
    tasks = ssm.describe_maintenance_window_tasks(WindowId=mw)["Tasks"]
    assert tasks[0]["Priority"] == 5 and tasks[0]["Type"] == "RUN_COMMAND"
    with pytest.raises(ssm.exceptions.TargetInUseException):
        ssm.deregister_target_from_maintenance_window(WindowId=mw, WindowTargetId=tid, Safe=True)
    ssm.deregister_task_from_maintenance_window(WindowId=mw, WindowTaskId=task)
    ssm.deregister_target_from_maintenance_window(WindowId=mw, WindowTargetId=tid, Safe=True)
    ssm.delete_maintenance_window(WindowId=mw)
    with pytest.raises(ssm.exceptions.DoesNotExistException):
        ssm.get_maintenance_window(WindowId=mw)


def put_fleet(sim, instances, account="123456789012", region="us-east-1"):
    body = {"accountId": account, "region": region, "instances": instances}
    return control(sim, "PUT", "/_sim/instances", body)


def fleet(sim, account="123456789012", region="us-east-1"):
    return control(sim, "GET", f"/_sim/instances?accountId={account}&region={region}")


def test_tags(sim):
    ssm = client(sim)
    put_fleet(sim, [{"instanceId": "mi-0123456789abcdef0"}])
    bid = ssm.create_patch_baseline(Name="tagged")["BaselineId"]
    ssm.add_tags_to_resource(ResourceType="PatchBaseline", ResourceId=bid, Tags=[{"Key": "a", "Value": "1"}])
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId="mi-0123456789abcdef0", Tags=[{"Key": "Patch Group", "Value": "web"}]
    )
    assert ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=bid)["TagList"] == [
        {"Key": "a", "Value": "1"}
    ]
    ssm.remove_tags_from_resource(ResourceType="PatchBaseline", ResourceId=bid, TagKeys=["a"])
    assert ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=bid)["TagList"] == []
    with pytest.raises(ssm.exceptions.InvalidResourceId):
        ssm.list_tags_for_resource(ResourceType="MaintenanceWindow", ResourceId="mw-0123456789abcdef0")


def test_assume_role_isolates_accounts(sim):
    sts = client(sim, "sts")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    creds = sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/patchfleet", RoleSessionName="tests")["Credentials"]
    role_ssm = client(sim, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
    bid = role_ssm.create_patch_baseline(Name="in-222")["BaselineId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(sim).get_patch_baseline(BaselineId=bid)
    assert error_code(e) == "DoesNotExistException"
    counted = control(sim, "GET", "/_sim/counters?account=222222222222&operation=CreatePatchBaseline")
    assert counted["total"] == 1


def test_throttling_fault_reaches_boto3(sim):
    control(sim, "PUT", "/_sim/faults", {"throttle_rate": 1.0, "operations": ["DescribeMaintenanceWindows"]})
    ssm = client(sim)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_maintenance_windows()
    assert error_code(e) == "ThrottlingException"


def test_send_and_list_commands(sim):
    ssm = client(sim)
    put_fleet(sim, [{"instanceId": "i-0123456789abcdef0"}, {"instanceId": "i-0123456789abcdef1"}])
    cmd = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        InstanceIds=["i-0123456789abcdef0", "i-0123456789abcdef1"],
        Parameters={"Operation": ["Scan"]},
    )["Command"]
    assert cmd["DocumentName"] == "AWS-RunPatchBaseline"
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"]
    assert listed[0]["CommandId"] == cmd["CommandId"]
    invocations = ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"]
    assert sorted(i["InstanceId"] for i in invocations) == ["i-0123456789abcdef0", "i-0123456789abcdef1"]


def test_fleet_install_through_boto3(sim):
    control(sim, "PUT", "/_sim/settings", {"command_seconds": 0})
    put_fleet(
        sim,
        [
            {"instanceId": "i-0123456789abcdef0", "tags": {"Patch Group": "early", "env": "prod"}, "missingPatches": 3},
            {"instanceId": "i-0123456789abcdef1", "tags": {"Patch Group": "early"}, "failsInstall": True},
        ],
    )
    ssm = client(sim)
    cmd = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        Targets=[{"Key": "tag:Patch Group", "Values": ["early"]}],
        Parameters={"Operation": ["Install"]},
        MaxErrors="1",
    )["Command"]
    assert cmd["TargetCount"] == 0 and cmd["Status"] == "Pending"
    listed = ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]
    assert (listed["Status"], listed["StatusDetails"], listed["ErrorCount"]) == ("Failed", "Failed", 1)
    statuses = {
        i["InstanceId"]: i["Status"]
        for i in ssm.list_command_invocations(CommandId=cmd["CommandId"])["CommandInvocations"]
    }
    assert statuses == {"i-0123456789abcdef0": "Success", "i-0123456789abcdef1": "Failed"}
    state = {i["instanceId"]: i for i in fleet(sim)["instances"]}
    patched = state["i-0123456789abcdef0"]
    assert (patched["installedPatches"], patched["reboots"], patched["missingPatches"]) == (3, 1, 0)
    assert patched["runs"][0]["rebooted"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.send_command(
            DocumentName="AWS-RunPatchBaseline",
            InstanceIds=["i-0000000000000000f"],
            Parameters={"Operation": ["Scan"]},
        )
    assert error_code(e) == "InvalidInstanceId"


def test_describe_instance_information_through_boto3(sim):
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html
    put_fleet(
        sim,
        [
            {"instanceId": "i-0123456789abcdef0", "tags": {"Patch Group": "web"}},
            {"instanceId": "i-0123456789abcdef1", "platformType": "Windows"},
            {"instanceId": "mi-0123456789abcdef2", "agentVersion": "3.1.0.0", "pingStatus": "ConnectionLost"},
        ],
    )
    ssm = client(sim)
    nodes = {
        n["InstanceId"]: n
        for page in ssm.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 5})
        for n in page["InstanceInformationList"]
    }
    assert set(nodes) == {"i-0123456789abcdef0", "i-0123456789abcdef1", "mi-0123456789abcdef2"}
    assert nodes["i-0123456789abcdef0"]["IsLatestVersion"] is True
    assert nodes["i-0123456789abcdef1"]["PlatformType"] == "Windows"
    assert nodes["i-0123456789abcdef1"]["IsLatestVersion"] is False
    hybrid = nodes["mi-0123456789abcdef2"]
    assert (hybrid["ResourceType"], hybrid["PingStatus"], hybrid["IsLatestVersion"]) == ("ManagedInstance", "ConnectionLost", False)
    assert hybrid["RegistrationDate"].year >= 2024 and len(hybrid["ActivationId"]) == 36
    tagged = ssm.describe_instance_information(Filters=[{"Key": "tag:Patch Group", "Values": ["web"]}])
    assert [n["InstanceId"] for n in tagged["InstanceInformationList"]] == ["i-0123456789abcdef0"]
    legacy = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PlatformTypes", "valueSet": ["Windows"]}]
    )
    assert [n["InstanceId"] for n in legacy["InstanceInformationList"]] == ["i-0123456789abcdef1"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_instance_information(Filters=[{"Key": "Color", "Values": ["red"]}])
    assert error_code(e) == "InvalidFilterKey"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_instance_information(MaxResults=51)
    assert error_code(e) == "ValidationException"
    old_agents = ssm.describe_instance_properties(
        FiltersWithOperator=[{"Key": "AgentVersion", "Values": ["3.2"], "Operator": "LessThan"}]
    )["InstanceProperties"]
    assert [p["InstanceId"] for p in old_agents] == ["mi-0123456789abcdef2"]


def test_patch_states_through_boto3(sim):
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstancePatchStates.html
    control(sim, "PUT", "/_sim/settings", {"command_seconds": 0})
    put_fleet(sim, [{"instanceId": "i-0123456789abcdef7", "missingPatches": 2}])
    ssm = client(sim)
    ssm.send_command(
        DocumentName="AWS-RunPatchBaseline", InstanceIds=["i-0123456789abcdef7"], Parameters={"Operation": ["Scan"]}
    )
    states = ssm.describe_instance_patch_states(InstanceIds=["i-0123456789abcdef7"])["InstancePatchStates"]
    assert [(s["Operation"], s["MissingCount"], s["InstalledCount"]) for s in states] == [("Scan", 2, 0)]
    assert ":patchbaseline/" in states[0]["BaselineId"]  # AWS's default for Amazon Linux 2
    patches = ssm.describe_instance_patches(InstanceId="i-0123456789abcdef7")["Patches"]
    assert {p["State"] for p in patches} == {"MISSING"} and len(patches) == 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_instance_patches(InstanceId="i-0123456789abcdef7", Filters=[{"Key": "Color", "Values": ["red"]}])
    assert error_code(e) == "InvalidFilter"
    # The node has no Patch Group tag: its report belongs to the group "".
    group = ssm.describe_patch_group_state(PatchGroup="web")
    assert group["Instances"] == 0
    listed = ssm.describe_instance_patch_states_for_patch_group(
        PatchGroup="web", Filters=[{"Key": "MissingCount", "Values": ["0"], "Type": "GreaterThan"}]
    )
    assert listed["InstancePatchStates"] == []


def test_aws_cli(sim):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    env.pop("AWS_PROFILE", None)

    def aws(*args):
        out = subprocess.run(
            ["aws", "--endpoint-url", sim, "--output", "json", *args], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert aws("sts", "get-caller-identity")["Account"] == "123456789012"
    mw = aws(
        "ssm", "create-maintenance-window", "--name", "cli", "--schedule", "rate(7 days)",
        "--duration", "2", "--cutoff", "1", "--no-allow-unassociated-targets",
    )["WindowId"]
    assert aws("ssm", "get-maintenance-window", "--window-id", mw)["Name"] == "cli"
    names = [b["BaselineName"] for b in aws("ssm", "describe-patch-baselines")["BaselineIdentities"]]
    assert "AWS-DefaultPatchBaseline" in names


def test_window_executions_through_boto3(sim):
    """A window run by the simulated clock, seen through the three Describe calls."""
    from datetime import datetime

    control(sim, "PUT", "/_sim/settings", {"command_seconds": 30})
    put_fleet(
        sim,
        [{"instanceId": f"i-{i:017x}", "tags": {"Patch Group": "web"}, "missingPatches": 1} for i in range(11)],
    )
    ssm = client(sim)
    mw = new_window(ssm, name="boto3-run", ScheduleTimezone="America/New_York")
    target = ssm.register_target_with_maintenance_window(
        WindowId=mw, ResourceType="INSTANCE", Targets=[{"Key": "tag:Patch Group", "Values": ["web"]}]
    )["WindowTargetId"]
    ssm.register_task_with_maintenance_window(
        WindowId=mw,
        TaskType="RUN_COMMAND",
        TaskArn="AWS-RunPatchBaseline",
        Targets=[{"Key": "WindowTargetIds", "Values": [target]}],
        TaskInvocationParameters={"RunCommand": {"Parameters": {"Operation": ["Install"]}}},
        MaxConcurrency="4",
        MaxErrors="0",
    )
    assert ssm.describe_maintenance_window_executions(WindowId=mw)["WindowExecutions"] == []
    nxt = ssm.get_maintenance_window(WindowId=mw)["NextExecutionTime"]
    at = datetime.fromisoformat(nxt.replace("Z", "+00:00")).timestamp()
    control(sim, "PUT", "/_sim/clock", {"now": nxt})
    # At the occurrence the first wave runs: the execution is in progress.
    running = ssm.describe_maintenance_window_executions(WindowId=mw)["WindowExecutions"]
    assert [e["Status"] for e in running] == ["IN_PROGRESS"]
    control(sim, "POST", "/_sim/clock/advance", {"seconds": 3600})

    executions = ssm.describe_maintenance_window_executions(WindowId=mw, MaxResults=10)["WindowExecutions"]
    assert len(executions) == 1 and executions[0]["Status"] == "SUCCESS"
    assert executions[0]["StartTime"].timestamp() == at
    eid = executions[0]["WindowExecutionId"]
    tasks = ssm.describe_maintenance_window_execution_tasks(
        WindowExecutionId=eid, Filters=[{"Key": "STATUS", "Values": ["SUCCESS"]}]
    )["WindowExecutionTaskIdentities"]
    assert [(t["TaskArn"], t["TaskType"], t["Status"]) for t in tasks] == [
        ("AWS-RunPatchBaseline", "RUN_COMMAND", "SUCCESS")
    ]
    paginator = ssm.get_paginator("describe_maintenance_window_execution_task_invocations")
    pages = list(
        paginator.paginate(
            WindowExecutionId=eid, TaskId=tasks[0]["TaskExecutionId"], PaginationConfig={"PageSize": 10}
        )
    )
    invocations = [i for p in pages for i in p["WindowExecutionTaskInvocationIdentities"]]
    assert len(pages) == 2 and len(invocations) == 11
    assert {i["Status"] for i in invocations} == {"SUCCESS"}
    assert all(i["WindowTargetId"] == target and i["ExecutionId"] for i in invocations)
    # Waves of 1, 2, 4 and 4 nodes, 30 s each.
    assert sorted({i["StartTime"].timestamp() - at for i in invocations}) == [0, 30, 60, 90]
    state = ssm.describe_instance_patch_states(InstanceIds=["i-00000000000000000"])["InstancePatchStates"][0]
    assert state["Operation"] == "Install" and state["OperationStartTime"].timestamp() == at

    raw = client(sim, validate=False)  # botocore checks MaxResults itself; the simulator must too
    for call, args in [
        (raw.describe_maintenance_window_executions, dict(WindowId=mw, MaxResults=5)),
        (raw.describe_maintenance_window_execution_tasks, dict(WindowExecutionId=eid, MaxResults=101)),
        (
            raw.describe_maintenance_window_execution_task_invocations,
            dict(WindowExecutionId=eid, TaskId=tasks[0]["TaskExecutionId"], MaxResults=9),
        ),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(**args)
        assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_maintenance_window_execution_tasks(WindowExecutionId="00000000-0000-4000-8000-000000000000")
    assert error_code(e) == "DoesNotExistException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.describe_maintenance_window_execution_task_invocations(
            WindowExecutionId=eid, TaskId="00000000-0000-4000-8000-000000000000"
        )
    assert error_code(e) == "DoesNotExistException"
    # The clock never goes backwards.
    with pytest.raises(urllib.error.HTTPError) as e:
        control(sim, "PUT", "/_sim/clock", {"now": at})
    assert e.value.code == 400


def test_compliance_summaries_through_boto3(sim):
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListResourceComplianceSummaries.html
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListComplianceSummaries.html
    control(sim, "PUT", "/_sim/settings", {"command_seconds": 0})
    missing, compliant, never = "i-0123456789abcde01", "i-0123456789abcde02", "i-0123456789abcde03"
    put_fleet(
        sim,
        [
            {"instanceId": missing, "tags": {"Patch Group": "app"}, "missingPatches": 2},
            {
                "instanceId": compliant,
                "tags": {"Patch Group": "app"},
                "patches": [
                    {"title": "openssl", "classification": "Security", "severity": "Important",
                     "releaseDate": "2024-01-15", "installed": True}
                ],
            },
            {"instanceId": never, "tags": {"Patch Group": "app"}, "missingPatches": 1},
        ],
    )
    ssm = client(sim)
    rules = {"PatchRules": [dict(RULES["PatchRules"][0], ComplianceLevel="CRITICAL")]}
    bid = ssm.create_patch_baseline(Name="app", OperatingSystem="AMAZON_LINUX_2", ApprovalRules=rules)["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=bid, PatchGroup="app")
    cid = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline", InstanceIds=[missing, compliant], Parameters={"Operation": ["Scan"]}
    )["Command"]["CommandId"]

    pages = list(
        ssm.get_paginator("list_resource_compliance_summaries").paginate(PaginationConfig={"PageSize": 1})
    )
    assert [len(p["ResourceComplianceSummaryItems"]) for p in pages] == [1, 1]
    items = {i["ResourceId"]: i for p in pages for i in p["ResourceComplianceSummaryItems"]}
    assert set(items) == {missing, compliant}  # never scanned: absent
    m = items[missing]
    assert (m["ComplianceType"], m["ResourceType"], m["Status"], m["OverallSeverity"]) == (
        "Patch", "ManagedInstance", "NON_COMPLIANT", "CRITICAL"
    )
    assert m["NonCompliantSummary"]["NonCompliantCount"] == 2
    assert m["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 2
    assert m["ExecutionSummary"]["ExecutionId"] == cid and m["ExecutionSummary"]["ExecutionType"] == "Command"
    assert m["ExecutionSummary"]["ExecutionTime"].year >= 2024
    c = items[compliant]
    assert (c["Status"], c["OverallSeverity"], c["CompliantSummary"]["CompliantCount"]) == ("COMPLIANT", "UNSPECIFIED", 1)

    critical = ssm.list_resource_compliance_summaries(
        Filters=[{"Key": "OverallSeverity", "Values": ["CRITICAL"], "Type": "EQUAL"}]
    )["ResourceComplianceSummaryItems"]
    assert [i["ResourceId"] for i in critical] == [missing]

    summaries = [
        s for p in ssm.get_paginator("list_compliance_summaries").paginate() for s in p["ComplianceSummaryItems"]
    ]
    assert len(summaries) == 1
    patch = summaries[0]
    assert patch["ComplianceType"] == "Patch"
    assert patch["CompliantSummary"]["CompliantCount"] == 1
    assert patch["CompliantSummary"]["SeveritySummary"]["UnspecifiedCount"] == 1
    assert patch["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert patch["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 1
    only_compliant = ssm.list_compliance_summaries(Filters=[{"Key": "Status", "Values": ["COMPLIANT"]}])
    assert only_compliant["ComplianceSummaryItems"][0]["NonCompliantSummary"]["NonCompliantCount"] == 0

    unchecked = client(sim, validate=False)
    for op in (unchecked.list_resource_compliance_summaries, unchecked.list_compliance_summaries):
        for n in (0, 51):
            with pytest.raises(botocore.exceptions.ClientError) as e:
                op(MaxResults=n)
            assert error_code(e) == "ValidationException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            op(Filters=[{"Key": "Status", "Values": ["COMPLIANT"], "Type": "Equal"}])
        assert error_code(e) == "ValidationException"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            op(Filters=[{"Key": "Color", "Values": ["red"]}])
        assert error_code(e) == "InvalidFilter"

    # Another account sees none of it.
    creds = client(sim, "sts").assume_role(
        RoleArn="arn:aws:iam::222222222222:role/patchfleet", RoleSessionName="tests"
    )["Credentials"]
    other = client(sim, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
    assert other.list_resource_compliance_summaries()["ResourceComplianceSummaryItems"] == []
    assert other.list_compliance_summaries()["ComplianceSummaryItems"] == []


def test_activations_through_boto3(sim):
    # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html
    ssm = client(sim)
    created = ssm.create_activation(
        IamRole="SSMServiceRole", DefaultInstanceName="vm", RegistrationLimit=2, Tags=[{"Key": "Patch Group", "Value": "web"}]
    )
    aid, code = created["ActivationId"], created["ActivationCode"]
    assert len(aid) == 36 and len(code) == 20
    listed = [
        a
        for page in ssm.get_paginator("describe_activations").paginate(
            Filters=[{"FilterKey": "DefaultInstanceName", "FilterValues": ["vm"]}]
        )
        for a in page["ActivationList"]
    ]
    assert [(a["ActivationId"], a["RegistrationLimit"], a["Expired"]) for a in listed] == [(aid, 2, False)]
    assert "ActivationCode" not in listed[0]
    assert listed[0]["Tags"] == [{"Key": "Patch Group", "Value": "web"}]

    node = control(sim, "POST", "/_sim/register", {"activationId": aid, "activationCode": code, "region": "us-east-1"})
    tags = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node["instanceId"])["TagList"]
    assert tags == [{"Key": "Patch Group", "Value": "web"}]

    ssm.delete_activation(ActivationId=aid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.delete_activation(ActivationId=aid)
    assert error_code(e) == "InvalidActivation"
    ssm.deregister_managed_instance(InstanceId=node["instanceId"])
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
