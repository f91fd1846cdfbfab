//! A stand-in AWS endpoint for the scale benchmark only (the product's behaviour is tested against
//! moto; moto takes minutes for one page at 10,000 instances, so it cannot be the endpoint here).
//!
//! It answers EC2 itself from generated data of any size, with AWS's response shape:
//! - `DescribeRegions`: the first `regions` of the 17 regions AWS enables by default;
//! - `DescribeInstances`: pages of at most 1,000 instances (`MaxResults`, `NextToken`), each in
//!   its own reservation with the fields a real answer carries (network interface, volume, IAM
//!   profile, metadata options…) and six tags, filtered on `instance-id`, `instance-state-name`,
//!   `tag-key` and `tag:<key>` as EC2 filters (keys and values compared exactly). An instance id
//!   the data does not hold is answered as a terminated instance of user 0, so a
//!   state-change event can be replayed against it;
//! - `DescribeVolumes`: pages of at most 500 volumes, one root volume per instance, attached to
//!   it and already carrying its owner's user-id tag, filtered on `status` and
//!   `attachment.instance-id`;
//! - `CreateTags`, `DeleteTags`: accepted and counted, nothing changes (the generated fleet is
//!   already tagged).
//!
//! Every EC2 answer waits `latency` first (concurrent calls wait at the same time, as on AWS).
//! Everything else (IAM: the reads and writes of a reconcile, a few calls per shard) is forwarded
//! to moto, so the policies written are real and read back as they were written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The 17 regions AWS enables in every account by default, in the order the stand-in lists them.
pub use shared::domain::ids::DEFAULT_ENABLED_REGIONS as DEFAULT_REGIONS;

/// DescribeInstances answers at most this many instances a page.
const PAGE: usize = 1000;
/// DescribeVolumes answers at most this many volumes a page (the sweep asks for 500).
const VOLUME_PAGE: usize = 500;

/// The generated fleet: `instances` running instances spread round-robin over `regions`, owned
/// round-robin by `users` users (instance `n` is in region `n % regions`, owned by user
/// `n % users`), each tagged `CreatedBy=<user>` and `AwsUserId=<role id>:<user>`.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub instances: usize,
    pub users: usize,
    pub regions: usize,
    pub role_id: String,
}

impl Fleet {
    pub fn user_name(index: usize) -> String {
        format!("researcher{index:05}")
    }

    fn region_index(&self, region: &str) -> Option<usize> {
        DEFAULT_REGIONS[..self.regions]
            .iter()
            .position(|r| *r == region)
    }

    /// The global indexes of the instances in `region`, in order.
    fn in_region(&self, region: usize) -> impl Iterator<Item = usize> + '_ {
        (region..self.instances).step_by(self.regions.max(1))
    }

    fn owner(&self, n: usize) -> usize {
        n % self.users.max(1)
    }
}

fn instance_id(n: usize) -> String {
    format!("i-0{n:016x}")
}

fn volume_id(n: usize) -> String {
    format!("vol-0{n:016x}")
}

fn instance_index(id: &str) -> Option<usize> {
    let hex = id.strip_prefix("i-0")?;
    (hex.len() == 16)
        .then(|| usize::from_str_radix(hex, 16).ok())
        .flatten()
}

pub struct StandIn {
    pub port: u16,
    /// Milliseconds every EC2 answer waits; may be changed while it runs.
    pub latency_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    fleet: Fleet,
    latency_ms: Arc<AtomicU64>,
    upstream_port: u16,
}

impl StandIn {
    /// Listen on a free loopback port; forward what is not EC2 to moto on `upstream_port`.
    pub async fn start(
        fleet: Fleet,
        latency: Duration,
        upstream_port: u16,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let latency_ms = Arc::new(AtomicU64::new(latency.as_millis() as u64));
        let state = Arc::new(State {
            fleet,
            latency_ms: latency_ms.clone(),
            upstream_port,
        });
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &state).await;
                });
            }
        });
        Ok(Self {
            port,
            latency_ms,
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, state: &State) -> std::io::Result<()> {
    let request = testkit::fault_proxy::read_request(&mut client).await?;
    let head_end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(request.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&request[..head_end]);
    // SigV4's credential scope names the region and the service: …/<region>/<service>/aws4_request
    let scope = head
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split([',', ' ']).next())
        .unwrap_or_default();
    let mut parts = scope.split('/').skip(2);
    let (region, service) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if service != "ec2" {
        let mut upstream = TcpStream::connect(("127.0.0.1", state.upstream_port)).await?;
        upstream.write_all(&request).await?;
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer).await?;
        client.write_all(&answer).await?;
        return client.shutdown().await;
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&request[head_end..])
        .into_owned()
        .collect();
    let action = value(&form, "Action").unwrap_or_default().to_owned();
    tokio::time::sleep(Duration::from_millis(
        state.latency_ms.load(Ordering::Relaxed),
    ))
    .await;
    let (status, body) = match action.as_str() {
        "DescribeRegions" => (200, describe_regions(&state.fleet)),
        "DescribeInstances" => match describe_instances(&state.fleet, region, &form) {
            Ok(body) => (200, body),
            Err(message) => (400, ec2_error("InvalidParameterValue", &message)),
        },
        "DescribeVolumes" => match describe_volumes(&state.fleet, region, &form) {
            Ok(body) => (200, body),
            Err(message) => (400, ec2_error("InvalidParameterValue", &message)),
        },
        "CreateTags" | "DeleteTags" => (
            200,
            format!("<{action}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>stand-in</requestId><return>true</return></{action}Response>"),
        ),
        other => (
            400,
            ec2_error(
                "InvalidAction",
                &format!("the stand-in does not answer {other}"),
            ),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status} OK\r\ncontent-type: text/xml;charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await
}

fn value<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn ec2_error(code: &str, message: &str) -> String {
    format!("<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>stand-in</RequestID></Response>")
}

fn describe_regions(fleet: &Fleet) -> String {
    let mut body = String::from("<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>stand-in</requestId><regionInfo>");
    for region in &DEFAULT_REGIONS[..fleet.regions] {
        let _ = write!(body, "<item><regionName>{region}</regionName><regionEndpoint>ec2.{region}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>");
    }
    body.push_str("</regionInfo></DescribeRegionsResponse>");
    body
}

/// `Filter.N.Name` / `Filter.N.Value.M` from the query form.
fn filters(form: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut names = BTreeMap::new();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, v) in form {
        let Some(rest) = key.strip_prefix("Filter.") else {
            continue;
        };
        let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
        if field == "Name" {
            names.insert(n.to_owned(), v.clone());
        } else if field.starts_with("Value.") {
            values.entry(n.to_owned()).or_default().push(v.clone());
        }
    }
    names
        .into_iter()
        .map(|(n, name)| (name, values.remove(&n).unwrap_or_default()))
        .collect()
}

/// One generated instance, as the filters see it.
struct Generated {
    id: String,
    state: &'static str,
    tags: [(String, String); 6],
}

fn generate(fleet: &Fleet, region: &str, n: usize, state: &'static str) -> Generated {
    let user = Fleet::user_name(fleet.owner(n));
    Generated {
        id: instance_id(n),
        state,
        tags: [
            ("Name".into(), format!("workspace-{n}")),
            ("CreatedBy".into(), user.clone()),
            ("AwsUserId".into(), format!("{}:{user}", fleet.role_id)),
            ("Project".into(), format!("project-{}", n % 97)),
            ("Environment".into(), "research".into()),
            (
                "aws:cloudformation:stack-name".into(),
                format!("SC-123456789012-pp-{n:x}-{region}"),
            ),
        ],
    }
}

fn matches(instance: &Generated, filters: &BTreeMap<String, Vec<String>>) -> Result<bool, String> {
    for (name, wanted) in filters {
        let ok = match name.as_str() {
            "instance-id" => wanted.contains(&instance.id),
            "instance-state-name" => wanted.iter().any(|w| w == instance.state),
            "tag-key" => instance.tags.iter().any(|(k, _)| wanted.contains(k)),
            other => match other.strip_prefix("tag:") {
                Some(key) => instance
                    .tags
                    .iter()
                    .any(|(k, v)| k == key && wanted.contains(v)),
                None => return Err(format!("the stand-in does not filter on {other}")),
            },
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `MaxResults` (at most `cap`) and the position `NextToken` names.
fn page_bounds(form: &[(String, String)], cap: usize) -> Result<(usize, usize), String> {
    let max: usize = value(form, "MaxResults")
        .map(|m| m.parse().map_err(|_| format!("MaxResults {m}")))
        .transpose()?
        .unwrap_or(cap)
        .min(cap);
    let start: usize = value(form, "NextToken")
        .map(|t| t.parse().map_err(|_| format!("NextToken {t}")))
        .transpose()?
        .unwrap_or(0);
    Ok((max, start))
}

/// The root volume of every instance of the region, attached and owner-tagged.
fn describe_volumes(
    fleet: &Fleet,
    region: &str,
    form: &[(String, String)],
) -> Result<String, String> {
    let filters = filters(form);
    let (max, start) = page_bounds(form, VOLUME_PAGE)?;
    let Some(r) = fleet.region_index(region) else {
        return Err(format!("region {region} is not enabled"));
    };
    for name in filters.keys() {
        if name != "status" && name != "attachment.instance-id" {
            return Err(format!("the stand-in does not filter volumes on {name}"));
        }
    }
    let wanted = |n: &usize| {
        let in_use = filters
            .get("status")
            .is_none_or(|s| s.iter().any(|s| s == "in-use"));
        let attached = filters
            .get("attachment.instance-id")
            .is_none_or(|ids| ids.contains(&instance_id(*n)));
        in_use && attached
    };
    let mut body = String::with_capacity(max * 900 + 512);
    body.push_str("<DescribeVolumesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>stand-in</requestId><volumeSet>");
    let mut matching = fleet.in_region(r).filter(wanted).skip(start);
    for n in matching.by_ref().take(max) {
        let user = Fleet::user_name(fleet.owner(n));
        let _ = write!(
            body,
            "<item><volumeId>{volume}</volumeId><size>8</size><snapshotId>snap-0123456789abcdef0</snapshotId>\
<availabilityZone>{region}a</availabilityZone><status>in-use</status><createTime>2026-11-30T08:15:43.000Z</createTime>\
<attachmentSet><item><volumeId>{volume}</volumeId><instanceId>{instance}</instanceId><device>/dev/xvda</device>\
<status>attached</status><attachTime>2026-11-30T08:15:43.000Z</attachTime><deleteOnTermination>true</deleteOnTermination></item></attachmentSet>\
<tagSet><item><key>AwsUserId</key><value>{role}:{user}</value></item><item><key>Name</key><value>workspace-{n}-root</value></item></tagSet>\
<volumeType>gp3</volumeType><iops>3000</iops><encrypted>true</encrypted><throughput>125</throughput><multiAttachEnabled>false</multiAttachEnabled></item>",
            volume = volume_id(n),
            instance = instance_id(n),
            role = fleet.role_id,
        );
    }
    body.push_str("</volumeSet>");
    if matching.next().is_some() {
        let _ = write!(body, "<nextToken>{}</nextToken>", start + max);
    }
    body.push_str("</DescribeVolumesResponse>");
    Ok(body)
}

fn describe_instances(
    fleet: &Fleet,
    region: &str,
    form: &[(String, String)],
) -> Result<String, String> {
    let filters = filters(form);
    let (max, start) = page_bounds(form, PAGE)?;
    let Some(r) = fleet.region_index(region) else {
        return Err(format!("region {region} is not enabled"));
    };
    let mut body = String::with_capacity(max.min(1000) * 3500 + 512);
    body.push_str("<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>stand-in</requestId><reservationSet>");
    let mut candidates: Vec<Generated> = Vec::new();
    // Ids the fleet does not hold: a terminated instance of user 0 (a replayed state change).
    if let Some(ids) = filters.get("instance-id") {
        for id in ids {
            match instance_index(id).filter(|n| *n < fleet.instances && n % fleet.regions == r) {
                Some(n) => candidates.push(generate(fleet, region, n, "running")),
                None => {
                    let mut gone = generate(fleet, region, 0, "terminated");
                    gone.id = id.clone();
                    candidates.push(gone);
                }
            }
        }
    }
    let mut position = 0;
    let mut written = 0;
    let mut next = None;
    let from_ids = !candidates.is_empty();
    let fleet_iter: Box<dyn Iterator<Item = Generated>> = if from_ids {
        Box::new(candidates.into_iter())
    } else {
        Box::new(
            fleet
                .in_region(r)
                .map(|n| generate(fleet, region, n, "running")),
        )
    };
    for instance in fleet_iter {
        if !matches(&instance, &filters)? {
            continue;
        }
        if position >= start {
            if written == max {
                next = Some(position);
                break;
            }
            reservation_xml(&mut body, region, &instance);
            written += 1;
        }
        position += 1;
    }
    body.push_str("</reservationSet>");
    if let Some(next) = next {
        let _ = write!(body, "<nextToken>{next}</nextToken>");
    }
    body.push_str("</DescribeInstancesResponse>");
    Ok(body)
}

/// One reservation holding one instance, with the fields a real answer carries.
fn reservation_xml(body: &mut String, region: &str, i: &Generated) {
    let id = &i.id;
    let short = &id[id.len() - 8..];
    let code = if i.state == "running" { 16 } else { 48 };
    let _ = write!(
        body,
        "<item><reservationId>r-0{short}{short}</reservationId><ownerId>123456789012</ownerId><requesterId>940372691376</requesterId><groupSet/>\
<instancesSet><item><instanceId>{id}</instanceId><imageId>ami-0abcdef1234567890</imageId>\
<instanceState><code>{code}</code><name>{state}</name></instanceState>\
<privateDnsName>ip-10-0-{a}-{b}.{region}.compute.internal</privateDnsName><dnsName/><reason/>\
<amiLaunchIndex>0</amiLaunchIndex><productCodes/><instanceType>t3.large</instanceType>\
<launchTime>2026-11-30T08:15:42.000Z</launchTime>\
<placement><availabilityZone>{region}a</availabilityZone><groupName/><tenancy>default</tenancy></placement>\
<monitoring><state>disabled</state></monitoring><subnetId>subnet-0123456789abcdef0</subnetId>\
<vpcId>vpc-0123456789abcdef0</vpcId><privateIpAddress>10.0.{a}.{b}</privateIpAddress>\
<sourceDestCheck>true</sourceDestCheck><groupSet><item><groupId>sg-0123456789abcdef0</groupId>\
<groupName>workspace-sg</groupName></item></groupSet><architecture>x86_64</architecture>\
<rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>\
<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-{root}</volumeId>\
<status>attached</status><attachTime>2026-11-30T08:15:43.000Z</attachTime>\
<deleteOnTermination>true</deleteOnTermination></ebs></item></blockDeviceMapping>\
<virtualizationType>hvm</virtualizationType><clientToken>sc-{short}</clientToken><tagSet>",
        state = i.state,
        // the root volume's id is the instance's digits, as `volume_id` gives them
        root = &id[2..],
        a = short.as_bytes()[6] % 200,
        b = short.as_bytes()[7] % 250,
    );
    for (key, value) in &i.tags {
        let _ = write!(body, "<item><key>{key}</key><value>{value}</value></item>");
    }
    let _ = write!(
        body,
        "</tagSet><hypervisor>xen</hypervisor><networkInterfaceSet><item>\
<networkInterfaceId>eni-0{short}{short}</networkInterfaceId><subnetId>subnet-0123456789abcdef0</subnetId>\
<vpcId>vpc-0123456789abcdef0</vpcId><description/><ownerId>123456789012</ownerId><status>in-use</status>\
<macAddress>0a:1b:2c:3d:4e:5f</macAddress><privateIpAddress>10.0.0.1</privateIpAddress>\
<privateDnsName>ip-10-0-0-1.{region}.compute.internal</privateDnsName><sourceDestCheck>true</sourceDestCheck>\
<groupSet><item><groupId>sg-0123456789abcdef0</groupId><groupName>workspace-sg</groupName></item></groupSet>\
<attachment><attachmentId>eni-attach-0{short}{short}</attachmentId><deviceIndex>0</deviceIndex>\
<status>attached</status><attachTime>2026-11-30T08:15:42.000Z</attachTime>\
<deleteOnTermination>true</deleteOnTermination><networkCardIndex>0</networkCardIndex></attachment>\
<privateIpAddressesSet><item><privateIpAddress>10.0.0.1</privateIpAddress>\
<privateDnsName>ip-10-0-0-1.{region}.compute.internal</privateDnsName><primary>true</primary></item>\
</privateIpAddressesSet><ipv6AddressesSet/><interfaceType>interface</interfaceType></item></networkInterfaceSet>\
<iamInstanceProfile><arn>arn:aws:iam::123456789012:instance-profile/workspace-profile</arn>\
<id>AIPAEXAMPLEPROFILE123</id></iamInstanceProfile><ebsOptimized>true</ebsOptimized>\
<enaSupport>true</enaSupport><cpuOptions><coreCount>1</coreCount><threadsPerCore>2</threadsPerCore></cpuOptions>\
<capacityReservationSpecification><capacityReservationPreference>open</capacityReservationPreference>\
</capacityReservationSpecification><hibernationOptions><configured>false</configured></hibernationOptions>\
<metadataOptions><state>applied</state><httpTokens>required</httpTokens><httpPutResponseHopLimit>2</httpPutResponseHopLimit>\
<httpEndpoint>enabled</httpEndpoint><httpProtocolIpv6>disabled</httpProtocolIpv6>\
<instanceMetadataTags>disabled</instanceMetadataTags></metadataOptions>\
<enclaveOptions><enabled>false</enabled></enclaveOptions><bootMode>uefi-preferred</bootMode>\
<platformDetails>Linux/UNIX</platformDetails><usageOperation>RunInstances</usageOperation>\
<usageOperationUpdateTime>2026-11-30T08:15:42.000Z</usageOperationUpdateTime>\
<privateDnsNameOptions><hostnameType>ip-name</hostnameType><enableResourceNameDnsARecord>false</enableResourceNameDnsARecord>\
<enableResourceNameDnsAAAARecord>false</enableResourceNameDnsAAAARecord></privateDnsNameOptions>\
<maintenanceOptions><autoRecovery>default</autoRecovery></maintenanceOptions>\
<currentInstanceBootMode>uefi</currentInstanceBootMode></item></instancesSet></item>"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        Fleet {
            instances: 2500,
            users: 7,
            regions: 2,
            role_id: "AROAEXAMPLEROLEID1234".into(),
        }
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ids_in(body: &str) -> usize {
        body.matches("<instanceId>").count()
    }

    #[test]
    fn pages_of_a_thousand_with_a_next_token_until_the_region_is_read() {
        let f = fleet();
        let first = describe_instances(&f, "us-east-1", &form(&[("MaxResults", "1000")])).unwrap();
        assert_eq!(ids_in(&first), 1000);
        assert!(first.contains("<nextToken>1000</nextToken>"));
        let last = describe_instances(
            &f,
            "us-east-1",
            &form(&[("MaxResults", "1000"), ("NextToken", "1000")]),
        )
        .unwrap();
        assert_eq!(ids_in(&last), 250);
        assert!(!last.contains("nextToken"));
    }

    #[test]
    fn volumes_come_in_pages_of_five_hundred_attached_to_their_instances() {
        let f = fleet();
        let volumes = |pairs: &[(&str, &str)]| describe_volumes(&f, "us-east-1", &form(pairs));
        let first =
            volumes(&[("Filter.1.Name", "status"), ("Filter.1.Value.1", "in-use")]).unwrap();
        assert_eq!(
            first.matches("<volumeId>").count(),
            1000,
            "500 volumes, each named twice"
        );
        assert!(first.contains("<nextToken>500</nextToken>"));
        let last = volumes(&[("NextToken", "1000")]).unwrap();
        assert_eq!(last.matches("<instanceId>").count(), 250);
        assert!(!last.contains("nextToken"));
        let one = volumes(&[
            ("Filter.1.Name", "attachment.instance-id"),
            ("Filter.1.Value.1", &instance_id(4)),
        ])
        .unwrap();
        assert!(one.contains(&format!("<instanceId>{}</instanceId>", instance_id(4))));
        assert_eq!(one.matches("<instanceId>").count(), 1);
        assert!(volumes(&[("Filter.1.Name", "size"), ("Filter.1.Value.1", "8")]).is_err());
    }

    #[test]
    fn tag_filters_compare_exactly_and_unknown_ids_are_terminated() {
        let f = fleet();
        let value = format!("{}:{}", f.role_id, Fleet::user_name(3));
        let page = describe_instances(
            &f,
            "us-east-2",
            &form(&[
                ("Filter.1.Name", "tag:AwsUserId"),
                ("Filter.1.Value.1", &value),
                ("Filter.2.Name", "instance-state-name"),
                ("Filter.2.Value.1", "running"),
            ]),
        )
        .unwrap();
        // 1,250 instances in the region (odd n), user 3 owns n % 7 == 3: n = 3, 17, 31, … 2,495.
        assert_eq!(ids_in(&page), 179);
        let none = describe_instances(
            &f,
            "us-east-2",
            &form(&[
                ("Filter.1.Name", "tag-key"),
                ("Filter.1.Value.1", "awsuserid"),
            ]),
        )
        .unwrap();
        assert_eq!(ids_in(&none), 0);
        let gone = describe_instances(
            &f,
            "us-east-1",
            &form(&[
                ("Filter.1.Name", "instance-id"),
                ("Filter.1.Value.1", "i-0a1b2c3d4e5f60006"),
            ]),
        )
        .unwrap();
        assert!(gone.contains("<name>terminated</name>"));
        assert!(describe_instances(&f, "eu-west-1", &[]).is_err());
        assert!(describe_instances(
            &f,
            "us-east-1",
            &form(&[("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", "x")])
        )
        .is_err());
    }
}
