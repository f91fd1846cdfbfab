// Reads {"requests": [{"policies": [document...], "principal", "action", "resource",
// "context": {key: value}}]} on stdin and prints one verdict per request, in order:
// "Allowed", "ImplicitlyDenied", "ExplicitlyDenied", or "error: <why>" when iam-simulate
// rejects the request or a policy (an unknown action or context key included).
import { runSimulation } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(await new Promise((resolve) => {
  let text = ''
  process.stdin.on('data', (chunk) => (text += chunk))
  process.stdin.on('end', () => resolve(text))
}))

const verdicts = []
for (const request of input.requests) {
  const response = await runSimulation(
    {
      identityPolicies: request.policies.map((policy, i) => ({ name: `policy${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
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
