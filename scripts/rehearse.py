"""Deploys infra/template.yaml into an AWS endpoint (moto) the way `sam deploy` would: the SAM
transform runs offline, the result is created as a CloudFormation stack, and what the
emulator's CloudFormation leaves out is named, never silently skipped. Prints one JSON object.

    python scripts/rehearse.py --endpoint http://127.0.0.1:PORT --stack NAME
        [--parameter Key=Value ...] [--least-privilege] [--without FUNCTION:ACTION ...]

--least-privilege also prints an administrator's keys and, per function, temporary credentials
of a role holding only that function's policy from the template (for an emulator that enforces
IAM); --without adds credentials for a function's policy with one action removed. Each
function also carries its role's policy from the template, resolved to the stack's ARNs.

    python scripts/rehearse.py --policies [--parameter Key=Value ...]

prints each function's policy as the template writes it (`${HooksTable.Arn}`), offline.
"""

import argparse
import hashlib
import io
import json
import os
import pathlib
import sys
import time
import uuid
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
CACHE = ROOT / "target" / "rehearsal"
BUCKET = "webhooks-rehearsal-artifacts"
ARTIFACT = "functions.zip"

# Resource types moto's CloudFormation accepts but does not create. Anything else it leaves
# out stops the rehearsal, so this list (and the README's) stays exact.
NOT_CREATED = {
    "AWS::ApiGatewayV2::Api": "the HTTP API; the tests run the functions behind the Lambda runtime emulator",
    "AWS::ApiGatewayV2::Stage": "the HTTP API's stage and its access log settings",
    "AWS::CloudWatch::Alarm": "alarms; cfn-lint and checkov check them, the EMF tests check their metric names",
}
# Moto's IAM matches an SQS request against its queue's ARN, but a DynamoDB, SSM or SNS request
# against the resource "*", which no statement naming a table, parameter or topic matches. The
# role copies hold the statements as written; the tests' recording proxy decides those calls
# against the same statements with the real ARNs (tests/src/recording_proxy.rs).
ACCOUNT = "123456789012"
# Operations AWS authorizes by other actions (a transaction by each item's action, an SQS batch
# by the single-message action), where moto asks for an action named after the operation: a
# statement granting one of those actions also grants the operation's name here.
BY_OTHER_ACTIONS = {
    "dynamodb:TransactWriteItems": {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    },
    "dynamodb:TransactGetItems": {"dynamodb:GetItem"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
}


def transformed():
    """The template as plain CloudFormation (cached under target/ by content)."""
    import samtranslator

    source = TEMPLATE.read_bytes()
    digest = hashlib.sha256(
        source + samtranslator.__version__.encode() + BUCKET.encode()
    ).hexdigest()[:16]
    cached = CACHE / f"template-{digest}.json"
    if cached.exists():
        return json.loads(cached.read_text())

    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
    template = yaml_parse(source.decode())
    # What `sam package` does: the code comes from S3.
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = f"s3://{BUCKET}/{ARTIFACT}"

    class NoManagedPolicies:
        def load(self):
            return {}

    result = transform(template, {}, NoManagedPolicies())
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(result, separators=(",", ":")))
    partial.replace(cached)
    return result


def clients(endpoint, keys=None):
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=(keys or {}).get("AccessKeyId", "testing"),
        aws_secret_access_key=(keys or {}).get("SecretAccessKey", "testing"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )
    return lambda service: session.client(service, endpoint_url=endpoint)


def upload_code(client):
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    # A stand-in: the emulator stores the code but never runs it; the tests run the real
    # binaries under the Lambda runtime emulator with this stack's configuration.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\nexit 1\n")
    s3.put_object(Bucket=BUCKET, Key=ARTIFACT, Body=archive.getvalue())


def create_stack(client, template, stack, parameters):
    cfn = client("cloudformation")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template, separators=(",", ":")),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.time() + 120
    while True:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = described["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.time() > deadline:
            sys.exit(f"stack {stack} still {status} after 120 s")
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        sys.exit(f"stack {stack}: {status} {described.get('StackStatusReason', '')}")
    resources = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            if r.get("LogicalResourceId"):
                resources[r["LogicalResourceId"]] = r.get("PhysicalResourceId") or ""
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in described.get("Outputs", [])
        if "${" not in o["OutputValue"]
    }
    return resources, outputs


def condition_holds(template, name, parameters):
    """Evaluates one of the template's conditions (Fn::Not, Fn::Equals, Fn::And, Fn::Or over
    parameter references and literals) with the stack's parameters."""

    def value(node):
        if isinstance(node, dict) and "Ref" in node:
            ref = node["Ref"]
            return parameters.get(ref, template["Parameters"].get(ref, {}).get("Default"))
        if isinstance(node, dict) and "Condition" in node:
            return condition_holds(template, node["Condition"], parameters)
        if isinstance(node, dict):
            (function, args), = node.items()
            if function == "Fn::Not":
                return not value(args[0])
            if function == "Fn::Equals":
                return str(value(args[0])) == str(value(args[1]))
            if function == "Fn::And":
                return all(value(a) for a in args)
            if function == "Fn::Or":
                return any(value(a) for a in args)
            sys.exit(f"condition {name}: {function} is not evaluated here")
        return node

    return bool(value(template["Conditions"][name]))


def check_created(client, template, resources, parameters):
    """Every resource exists, except the types moto's CloudFormation is known to skip and
    those whose condition is false."""
    not_created = {}
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        if resources.get(logical):
            continue
        if "Condition" in resource and not condition_holds(template, resource["Condition"], parameters):
            continue
        if kind == "AWS::Lambda::Permission":
            # Created without a physical id: look for it in the function's policy.
            name = template_function_name(template, resource["Properties"]["FunctionName"], resources)
            policy = client("lambda").get_policy(FunctionName=name)["Policy"]
            if "lambda:InvokeFunction" in policy:
                continue
        if kind in NOT_CREATED:
            not_created[logical] = kind
            continue
        sys.exit(f"moto's CloudFormation did not create {logical} ({kind}); name the type in README and NOT_CREATED")
    return not_created


def template_function_name(template, reference, resources):
    if isinstance(reference, dict) and "Ref" in reference:
        return resources[reference["Ref"]]
    return reference


def apply_fallbacks(client, template, resources):
    """What moto's CloudFormation ignores, applied by hand, each named in the output."""
    applied = []
    dynamodb = client("dynamodb")
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        ttl = resource["Properties"].get("TimeToLiveSpecification")
        if not ttl or not ttl.get("Enabled"):
            continue
        table = resources[logical]
        status = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            continue
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
        applied.append(f"{logical}: TimeToLiveSpecification ({ttl['AttributeName']})")
    lambda_ = client("lambda")
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            # The tests' sender plays Lambda's poller; moto's would try to run the stand-in.
            lambda_.update_event_source_mapping(UUID=resources[logical], Enabled=False)
            applied.append(f"{logical}: disabled (the tests invoke the sender with its batches)")
    return applied


def functions(client, template, resources):
    """Per binary: the deployed function's name, role and environment, as moto holds them."""
    sam = binaries()
    lambda_ = client("lambda")
    found = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        config = lambda_.get_function_configuration(FunctionName=resources[logical])
        variables = config.get("Environment", {}).get("Variables", {})
        found[sam[logical]] = {
            "logicalId": logical,
            "name": config["FunctionName"],
            "role": config["Role"],
            "timeout": config.get("Timeout"),
            "memorySize": config.get("MemorySize"),
            "environment": {k: str(v) for k, v in variables.items()},
        }
    return found


def queue_arns(client, template, resources):
    sqs = client("sqs")
    return {
        logical: sqs.get_queue_attributes(QueueUrl=resources[logical], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SQS::Queue"
    }


def binaries():
    """Logical id -> the binary SAM's cargo-lambda builder builds for it."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(TEMPLATE.read_text())
    return {
        logical: r["Metadata"]["BuildProperties"]["Binary"]
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def administrator(client):
    iam = client("iam")
    name = f"rehearsal-admin-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def role_credentials(client, role_arn, without=None):
    """Temporary credentials of a copy of `role_arn` holding its statements only (minus the
    action `without`), as the function would hold them on Lambda."""
    iam = client("iam")
    source = role_arn.split("/")[-1]
    role = iam.get_role(RoleName=source)["Role"]
    statements, original = [], []
    for name in iam.list_role_policies(RoleName=source)["PolicyNames"]:
        document = policy_document(iam.get_role_policy(RoleName=source, PolicyName=name))
        for statement in as_list(document["Statement"]):
            original.append(statement)
            actions = [a for a in as_list(statement["Action"]) if a != without]
            if not actions:
                continue
            actions += [t for t, items in BY_OTHER_ACTIONS.items() if items & set(actions)]
            statements.append(dict(statement, Action=actions))
    if without and not any(without in as_list(s["Action"]) for s in original):
        sys.exit(f"{source} has no action {without} to remove")
    copy = f"{source[:40]}-{uuid.uuid4().hex[:8]}"
    trust = role["AssumeRolePolicyDocument"]
    iam.create_role(
        RoleName=copy,
        AssumeRolePolicyDocument=trust if isinstance(trust, str) else json.dumps(trust),
    )
    iam.put_role_policy(
        RoleName=copy,
        PolicyName="function",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    for attached in iam.list_attached_role_policies(RoleName=source)["AttachedPolicies"]:
        iam.attach_role_policy(RoleName=copy, PolicyArn=attached["PolicyArn"])
    assumed = client("sts").assume_role(
        RoleArn=f"{role_arn.rsplit('/', 1)[0]}/{copy}", RoleSessionName="function"
    )["Credentials"]
    return {
        "AccessKeyId": assumed["AccessKeyId"],
        "SecretAccessKey": assumed["SecretAccessKey"],
        "SessionToken": assumed["SessionToken"],
        "statements": statements,
        "granted": original,
    }


def role_policies(template, parameters):
    """Per binary: its role's statements and managed policies as the transformed template
    writes them (conditional policies only when their condition holds)."""
    found = {}
    for logical, binary in binaries().items():
        role = f"{logical}Role"
        properties = template["Resources"][role]["Properties"]
        statements = [
            s for p in properties.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])
        ]
        for name, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Policy" or {"Ref": role} not in resource["Properties"]["Roles"]:
                continue
            if "Condition" in resource and not condition_holds(template, resource["Condition"], parameters):
                continue
            statements += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
        found[binary] = {"statements": statements, "managedPolicies": properties.get("ManagedPolicyArns", [])}
    return found


def resolve(node, value):
    """`node` with Ref, Fn::GetAtt, Fn::Sub and Fn::Join replaced; `value(name)` gives what
    `${name}` (a parameter, pseudo parameter, resource or `Resource.Attribute`) stands for."""
    import re

    if isinstance(node, list):
        return [resolve(n, value) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return value(node["Ref"])
    if "Fn::GetAtt" in node:
        target = node["Fn::GetAtt"]
        return value(".".join(target) if isinstance(target, list) else target)
    if "Fn::Sub" in node:
        text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        variables = {k: resolve(v, value) for k, v in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: variables.get(m[1]) or value(m[1]), text)
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(resolve(parts, value))
    return {k: resolve(v, value) for k, v in node.items()}


def symbolic(name):
    return "${" + name + "}"


def concrete_value(template, resources, parameters, queues):
    """What a name stands for in the stack created in the emulator."""
    region = os.environ.get("AWS_REGION", "us-east-1")

    def value(name):
        pseudo = {"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": ACCOUNT}
        if name in pseudo:
            return pseudo[name]
        if name in template["Parameters"]:
            return parameters.get(name, template["Parameters"][name].get("Default", ""))
        logical, _, attribute = name.partition(".")
        kind = template["Resources"][logical]["Type"]
        if not attribute:
            return resources[logical]
        if (kind, attribute) == ("AWS::DynamoDB::Table", "Arn"):
            return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{resources[logical]}"
        if (kind, attribute) == ("AWS::SQS::Queue", "Arn"):
            return queues[logical]
        sys.exit(f"{name}: not resolved here")

    return value


def policies(template, parameters, value):
    """Per binary: statements and managed policies resolved with `value`."""
    return {
        binary: {k: resolve(v, value) for k, v in policy.items()}
        for binary, policy in role_policies(template, parameters).items()
    }


def policy_document(answer):
    """A role policy as moto returns it: JSON, or the repr of a dict when CloudFormation made it."""
    import ast

    document = answer["PolicyDocument"]
    if isinstance(document, dict):
        return document
    try:
        return json.loads(document)
    except ValueError:
        return ast.literal_eval(document)


def as_list(value):
    return value if isinstance(value, list) else [value]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint")
    parser.add_argument("--stack")
    parser.add_argument(
        "--policies", action="store_true", help="only print each function's policy as the template writes it"
    )
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--least-privilege", action="store_true")
    parser.add_argument("--without", action="append", default=[], metavar="FUNCTION:ACTION")
    args = parser.parse_args()
    parameters = dict(p.split("=", 1) for p in args.parameter)

    template = transformed()
    if args.policies:
        json.dump(policies(template, parameters, symbolic), sys.stdout)
        print()
        return
    if not (args.endpoint and args.stack):
        parser.error("--endpoint and --stack are required")
    client = clients(args.endpoint)
    upload_code(client)
    resources, outputs = create_stack(client, template, args.stack, parameters)
    not_created = check_created(client, template, resources, parameters)
    fallbacks = apply_fallbacks(client, template, resources)
    result = {
        "stack": args.stack,
        "outputs": outputs,
        "resources": {k: v for k, v in resources.items() if v},
        "notCreated": not_created,
        "fallbacks": fallbacks,
        "functions": functions(client, template, resources),
        "queueArns": queue_arns(client, template, resources),
    }
    value = concrete_value(template, resources, parameters, result["queueArns"])
    for binary, policy in policies(template, parameters, value).items():
        policy["symbolic"] = policies(template, parameters, symbolic)[binary]["statements"]
        result["functions"][binary]["policy"] = policy
    if args.least_privilege or args.without:
        result["administrator"] = administrator(client)
        for binary, function in result["functions"].items():
            function["credentials"] = role_credentials(client, function["role"])
        result["withoutAction"] = {}
        for spec in args.without:
            binary, action = spec.split(":", 1)
            role = result["functions"][binary]["role"]
            result["withoutAction"][spec] = role_credentials(client, role, without=action)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
