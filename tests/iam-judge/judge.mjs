// Reads {"requests": [{"policies": [document...], "principal", "action", "resource",
// "context": {key: value}, "resourcePolicy"?: document, "boundaries"?: [document...]}]} on stdin
// and prints one verdict per request, in order:
// "Allowed", "ImplicitlyDenied", "ExplicitlyDenied", or "error: <why>" when iam-simulate
// rejects the request or a policy (an unknown action or context key included).
import { runSimulation } from '@cloud-copilot/iam-simulate'

// iam-simulate looks a service condition key up under the service its prefix names, and
// ec2:osuser is defined under ec2-instance-connect (SendSSHPublicKey), so it answers "Condition
// key ec2:osuser not found". Stand-in: the same String comparison under a key it knows,
// renamed alike in the policies and the context. Nothing else is renamed.
const STAND_INS = { 'ec2:osuser': 'aws:RequestTag/judge-stand-in-ec2-osuser' }
const standIn = (text) =>
  Object.entries(STAND_INS).reduce(
    (renamed, [key, stand]) => renamed.replace(new RegExp(`"${key}"`, 'gi'), JSON.stringify(stand)),
    text,
  )

const input = JSON.parse(await new Promise((resolve) => {
  let text = ''
  process.stdin.on('data', (chunk) => (text += chunk))
  process.stdin.on('end', () => resolve(text))
}))

const verdicts = []
for (const original of input.requests) {
  const request = JSON.parse(standIn(JSON.stringify(original)))
  const response = await runSimulation(
    {
      identityPolicies: request.policies.map((policy, i) => ({ name: `policy${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(request.resourcePolicy ? { resourcePolicy: request.resourcePolicy } : {}),
      ...(request.boundaries
        ? { permissionBoundaryPolicies: request.boundaries.map((policy, i) => ({ name: `boundary${i}`, policy })) }
        : {}),
      request: {
        action: request.action,
        principal: request.principal,
        resource: { accountId: '123456789012', resource: request.resource },
        contextVariables: request.context,
      },
    },
    {},
  )
  verdicts.push(
    response.resultType === 'error' ? `error: ${JSON.stringify(response.errors)}` : response.overallResult,
  )
}
process.stdout.write(JSON.stringify(verdicts))
