/**
 * The web console build: `vite build web` (part of `npm run build`) writes web/dist, which the
 * gateway serves at `/` (src/api/console.ts). `vite web` serves it for development with the API
 * proxied to a running gateway (`GATEHOUSE_URL`, default http://127.0.0.1:8080).
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

const gateway = process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { '/api': gateway, '/console': gateway, '/dev-issuer': gateway },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
