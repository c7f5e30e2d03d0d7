// @hey-api/openapi-ts: a fetch client, types, and Zod schemas that validate every request the
// SDK sends and every answer it parses (so a wire format the document does not describe fails).
export default {
  input: './generated/openapi.json', // a path ("a/b" alone names a Hey API registry project)
  output: './generated/hey-api',
  plugins: ['@hey-api/client-fetch', 'zod', { name: '@hey-api/sdk', validator: true }],
};
