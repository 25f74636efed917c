// What a user's browser does during an authorization request to provider.mjs, scripted: follow the
// redirects with the provider's cookies, and at each interaction page submit the login form (as `user`)
// or the consent form, until the provider sends the browser back to the client's redirect URI.
export const REDIRECT_URI = 'http://127.0.0.1:9/callback';

// Returns the authorization code; fails when the provider refuses or the state does not come back.
export async function authorize(authorizationUrl, user) {
  const jar = new Map();
  const request = async (url, options = {}) => {
    const headers = { ...(options.headers ?? {}) };
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...options, headers, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return res;
  };
  const state = new URL(authorizationUrl).searchParams.get('state');
  let next = authorizationUrl.toString();
  for (let step = 0; step < 12; step += 1) {
    const res = await request(next);
    if (res.status >= 300 && res.status < 400) {
      const location = new URL(res.headers.get('location'), next);
      if (location.href.startsWith(REDIRECT_URI)) {
        if (location.searchParams.get('state') !== state) throw new Error('the state did not come back');
        const code = location.searchParams.get('code');
        if (!code) throw new Error(`authorization refused: ${location.searchParams.get('error_description')}`);
        return code;
      }
      next = location.href;
      continue;
    }
    const page = await res.text();
    if (res.status !== 200 || !next.includes('/interaction/')) {
      throw new Error(`unexpected page at ${next}: HTTP ${res.status} ${page.slice(0, 500)}`);
    }
    const prompt = page.includes('name="login"') ? 'login' : 'consent';
    const form = new URLSearchParams(prompt === 'login' ? { prompt, login: user, password: 'any' } : { prompt });
    const submitted = await request(next, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    if (submitted.status < 300 || submitted.status >= 400) {
      throw new Error(`${prompt} refused: HTTP ${submitted.status} ${await submitted.text()}`);
    }
    next = new URL(submitted.headers.get('location'), next).href;
  }
  throw new Error('no authorization code after 12 steps');
}
